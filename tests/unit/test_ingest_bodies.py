"""Candidate bodies: what is wrong, and which field, in every rejection."""

from __future__ import annotations

import pytest

from ingest.bodies import SaveBody, StartBody
from ingest.service import IngestError, _decode_body


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b'{"email": "a@b.org", "name": "A", "admin": true}', "admin", "unknown field"),
        (b'{"email": "a@b.org"}', "name", "missing required field"),
        (b'{"email": 5, "name": "A"}', "email", "Expected `str`"),
        (b'{"email": "a@b.org", "name": ""}', "name", "length"),
        (
            b'{"email": "a@b.org", "name": "A", "client_ts": "2026-01-01T00:00:00"}',
            "client_ts",
            "timezone",
        ),
    ],
)
def test_start_body_rejections_name_the_field(body: bytes, field: str, words: str) -> None:
    with pytest.raises(IngestError) as caught:
        _decode_body(body, StartBody, 10_000)
    assert caught.value.status == 422
    assert caught.value.field == field
    assert words.lower() in caught.value.detail.lower()


def test_nested_fields_are_named_with_their_path() -> None:
    with pytest.raises(IngestError) as caught:
        _decode_body(
            b'{"question_id": "q", "client_seq": 1, "selected_options": [1, "x"]}', SaveBody, 10_000
        )
    assert caught.value.field == "selected_options[1]"


def test_not_json_and_too_large() -> None:
    with pytest.raises(IngestError, match="not valid JSON") as caught:
        _decode_body(b"{nope", StartBody, 10_000)
    assert caught.value.status == 422
    with pytest.raises(IngestError) as too_big:
        _decode_body(b"x" * 11, StartBody, 10)
    assert too_big.value.status == 413


def test_an_empty_body_is_an_empty_object() -> None:
    with pytest.raises(IngestError) as caught:
        _decode_body(b"", StartBody, 10)
    assert caught.value.field == "email"
