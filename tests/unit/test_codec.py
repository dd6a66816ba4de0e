"""The wire contract: every schema parses, every version round-trips, evolution works,
and anything that is not a known single-object message is refused with a reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_writer
from fastavro.schema import parse_schema

from avro_schemas.codec import MAGIC, DecodeError, EncodeError, SchemaCatalog, catalog
from avro_schemas.records import Record
from avro_schemas.topics import ALL_TOPICS

NOW = datetime(2026, 12, 3, 12, 0, 0, 123000, tzinfo=UTC)


def sample_value(schema: dict[str, Any], named: dict[str, Any] | None = None) -> dict[str, Any]:
    """A value for every field of a record schema, chosen by type."""
    named = {} if named is None else named
    named[schema["name"]] = schema
    return {
        field["name"]: _sample(field["type"], field["name"], named) for field in schema["fields"]
    }


def _sample(avro_type: Any, name: str, named: dict[str, Any]) -> Any:
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        return _sample(non_null[0], name, named)
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") == "timestamp-millis":
            return NOW
        if avro_type["type"] == "array":
            return [_sample(avro_type["items"], name, named)]
        if avro_type["type"] == "enum":
            named[avro_type["name"]] = avro_type
            return avro_type["symbols"][-1]
        if avro_type["type"] == "record":
            return sample_value(avro_type, named)
        return _sample(avro_type["type"], name, named)
    if avro_type in named:  # a reference to a type defined earlier in the schema
        return _sample(named[avro_type], name, named)
    return {
        "string": f"{name}-ü-😀",
        "bytes": b"\xff\x00" + name.encode(),
        "int": 7,
        "long": 2**40,
        "double": 2.5,
        "boolean": True,
    }[avro_type]


def test_every_record_name_has_a_schema_and_every_schema_a_name() -> None:
    names = {s.name for s in catalog().all_versions}
    assert names == {r.value for r in Record}


def test_every_topic_names_known_records() -> None:
    for topic in ALL_TOPICS:
        for record in topic.records:
            assert record in catalog().latest
    assert len({t.base_name for t in ALL_TOPICS}) == len(ALL_TOPICS)


@pytest.mark.parametrize("stored", catalog().all_versions, ids=lambda s: f"{s.name}-v{s.version}")
def test_every_stored_version_round_trips(stored: Any) -> None:
    raw = json.loads(stored.path.read_text())
    value = sample_value(raw)
    buffer = BytesIO()
    schemaless_writer(buffer, parse_schema(raw), value)
    decoded = catalog().decode(MAGIC + stored.fingerprint + buffer.getvalue())
    assert decoded.name == stored.name
    assert decoded.writer_version == stored.version
    for key, expected in value.items():
        assert decoded.value[key] == expected


def test_header_is_magic_then_little_endian_crc64_fingerprint() -> None:
    value = sample_value(json.loads(catalog().latest[Record.HEARTBEAT].path.read_text()))
    data = catalog().encode(Record.HEARTBEAT, value)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == catalog().latest[Record.HEARTBEAT].fingerprint


def test_crc64_avro_fingerprint_matches_the_specification_vector() -> None:
    # The Avro specification's Java implementation gives 7195948357588979594 as the
    # CRC-64-AVRO fingerprint of the schema "null"; on the wire it is little-endian.
    from fastavro.schema import fingerprint

    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == (7195948357588979594).to_bytes(
        8, "little"
    )


def _write_versions(folder: Path, versions: list[dict[str, Any]]) -> None:
    (folder / "thing").mkdir(parents=True)
    for n, schema in enumerate(versions, start=1):
        (folder / "thing" / f"v{n}.avsc").write_text(json.dumps(schema))


def test_old_messages_decode_with_the_newest_schema(tmp_path: Path) -> None:
    v1 = {
        "type": "record",
        "namespace": "t",
        "name": "Thing",
        "fields": [{"name": "id", "type": "string"}],
    }
    v2 = {**v1, "fields": [*v1["fields"], {"name": "note", "type": "string", "default": "none"}]}
    _write_versions(tmp_path, [v1])
    old = SchemaCatalog(tmp_path).encode("t.Thing", {"id": "a"})  # type: ignore[arg-type]
    (tmp_path / "thing" / "v2.avsc").write_text(json.dumps(v2))
    decoded = SchemaCatalog(tmp_path).decode(old)
    assert decoded.value == {"id": "a", "note": "none"}
    assert decoded.writer_version == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "shorter"),
        (b"", "shorter"),
        (b"\x00\x01" + b"\x00" * 12, "magic"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x00", "unknown schema fingerprint"),
    ],
)
def test_refuses_what_is_not_a_known_message(data: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        catalog().decode(data)


def test_refuses_a_corrupt_or_truncated_body() -> None:
    value = sample_value(json.loads(catalog().latest[Record.ANSWER_SAVED].path.read_text()))
    good = catalog().encode(Record.ANSWER_SAVED, value)
    with pytest.raises(DecodeError):
        catalog().decode(good[:-5])
    with pytest.raises(DecodeError, match="trailing"):
        catalog().decode(good + b"\x00")


def test_encode_refuses_a_value_that_does_not_fit() -> None:
    with pytest.raises(EncodeError):
        catalog().encode(Record.HEARTBEAT, {"event_id": str(uuid.uuid4())})
