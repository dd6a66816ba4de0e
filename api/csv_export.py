"""A contest's results as CSV: the column order and cells safe to open in a spreadsheet.

Cells that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a
carriage return) get a leading apostrophe, as OWASP recommends against CSV injection:
participant names and emails are candidate input.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

ATTEMPT_COLUMNS = (
    "attempt_id",
    "participant_email",
    "participant_name",
    "status",
    "started_at",
    "finished_at",
    "total_score",
    "max_score",
    "rank",
    "counted_saves",
    "late_saves",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """One cell's text: empty for None, ISO 8601 for times, defused if formula-like."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat()
    else:
        text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def header(question_count: int) -> list[str]:
    """The header row: the attempt's columns, then q1_score ... in question order."""
    return [*ATTEMPT_COLUMNS, *(f"q{n}_score" for n in range(1, question_count + 1))]


def row_cells(row: dict[str, Any]) -> list[str]:
    """One attempt's cells, in header order; `scores` holds the per-question scores."""
    scores: Sequence[object] = row["scores"] or ()
    return [safe_cell(row[column]) for column in ATTEMPT_COLUMNS] + [
        safe_cell(score) for score in scores
    ]


def csv_text(rows: Iterable[Sequence[str]]) -> str:
    """Rows as CSV text with CRLF line ends (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()
