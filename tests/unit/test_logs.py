"""Production logs are one JSON object a line, with the ids a reader filters by."""

from __future__ import annotations

import json
import logging

from elevate.logs import JsonFormatter


def test_json_lines_carry_role_level_message_and_ids() -> None:
    record = logging.LogRecord(
        "ingest", logging.WARNING, __file__, 1, "produce failed: %s", ("timeout",), None
    )
    record.attempt_id = "a-1"
    record.contest_id = "c-1"
    line = json.loads(JsonFormatter("ingest").format(record))
    assert line["role"] == "ingest" and line["level"] == "WARNING"
    assert line["message"] == "produce failed: timeout"
    assert (line["attempt_id"], line["contest_id"]) == ("a-1", "c-1")
    assert line["ts"].endswith("+00:00")


def test_exceptions_stay_inside_the_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter("api").format(record)
    assert "\n" not in text  # the traceback is escaped inside the one line
    assert "ValueError: boom" in json.loads(text)["exception"]
