"""Avro single-object encoding: `C3 01` + CRC-64-AVRO fingerprint (8 bytes LE) + body.

The fingerprint names the writer schema, so a reader needs no external registry: every
schema version that ever shipped lives under `schemas/`, and a message is decoded with
its writer schema resolved against the newest version of the same record.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from avro_schemas.records import Record

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
MAGIC = b"\xc3\x01"
HEADER_LENGTH = len(MAGIC) + 8


class DecodeError(ValueError):
    """The bytes are not a single-object-encoded record of a known schema."""


class EncodeError(ValueError):
    """The value does not fit the record's schema."""


@dataclass(frozen=True)
class StoredSchema:
    """One shipped version of one record's schema."""

    name: str
    version: int
    path: Path
    parsed: Any
    fingerprint: bytes


@dataclass(frozen=True)
class Decoded:
    """A decoded message: which record it is and its fields (resolved to the newest schema)."""

    name: str
    value: dict[str, Any]
    writer_version: int


def _load(path: Path) -> StoredSchema:
    raw = json.loads(path.read_text(encoding="utf-8"))
    parsed = parse_schema(raw)
    canonical = to_parsing_canonical_form(raw)
    version = int(path.stem.removeprefix("v"))
    return StoredSchema(
        name=f"{raw['namespace']}.{raw['name']}",
        version=version,
        path=path,
        parsed=parsed,
        # fastavro returns the fingerprint's bytes in little-endian order as hex, which
        # is exactly the order single-object encoding puts on the wire.
        fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
    )


class SchemaCatalog:
    """Every shipped schema version, found by fingerprint or by record name."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self.all_versions = [_load(p) for p in sorted(schema_dir.glob("*/v*.avsc"))]
        self.by_fingerprint = {s.fingerprint: s for s in self.all_versions}
        self.latest: dict[str, StoredSchema] = {}
        for schema in self.all_versions:
            current = self.latest.get(schema.name)
            if current is None or schema.version > current.version:
                self.latest[schema.name] = schema

    def encode(self, record: Record, value: Mapping[str, Any]) -> bytes:
        """Encode `value` with the newest schema of `record`."""
        schema = self.latest[record]
        buffer = io.BytesIO()
        buffer.write(MAGIC)
        buffer.write(schema.fingerprint)
        try:
            fastavro.schemaless_writer(buffer, schema.parsed, value)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise EncodeError(f"{record}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> Decoded:
        """Decode a single-object-encoded message, resolving it to the newest schema."""
        if data is None or len(data) < HEADER_LENGTH:
            raise DecodeError("message shorter than the single-object header")
        if data[:2] != MAGIC:
            raise DecodeError(f"bad magic bytes {data[:2].hex()}, expected c301")
        writer = self.by_fingerprint.get(data[2:HEADER_LENGTH])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {data[2:HEADER_LENGTH].hex()}")
        reader = self.latest[writer.name]
        buffer = io.BytesIO(data)
        buffer.seek(HEADER_LENGTH)
        try:
            value = fastavro.schemaless_reader(buffer, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types on corrupt bodies
            raise DecodeError(f"{writer.name} v{writer.version}: corrupt body: {exc!r}") from exc
        if buffer.tell() != len(data):
            raise DecodeError(f"{writer.name} v{writer.version}: trailing bytes after the body")
        if not isinstance(value, dict):
            raise DecodeError(f"{writer.name}: not a record")
        return Decoded(name=writer.name, value=value, writer_version=writer.version)


@lru_cache(maxsize=1)
def catalog() -> SchemaCatalog:
    """The process-wide schema catalog, loaded once."""
    return SchemaCatalog()


def encode(record: Record, value: Mapping[str, Any]) -> bytes:
    """Encode with the process-wide catalog."""
    return catalog().encode(record, value)


def decode(data: bytes | None) -> Decoded:
    """Decode with the process-wide catalog."""
    return catalog().decode(data)
