"""Bulk question uploads: CSV and JSON files parsed into checked questions, row by row.

Plain functions over bytes: nothing here touches the database. Every row is checked by
the same rules as `POST /api/v1/admin/questions/`, and each problem names the row and
the field (the CSV column, or the dotted path in a JSON item) it is about. The formats
are described in docs/bulk-upload.md.

Question ids are deterministic, so uploading a file again finds the questions it
created instead of adding copies:

- with `external_id`: uuid5(UPLOAD_NAMESPACE, "<contest_id>/external_id/<external_id>");
- without: uuid5(UPLOAD_NAMESPACE, "<contest_id>/sha256/<hash>"), the hash being that of
  the question's type, text and options (not its key or marks, so correcting those and
  uploading again updates the question rather than adding a second one).
"""

from __future__ import annotations

import contextlib
import csv
import email.parser
import email.policy
import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from api.definition_rules import (
    answer_key_problems,
    question_detail_problems,
    requested_answer_key,
)
from api.schemas import UploadedQuestion

UPLOAD_NAMESPACE = uuid.UUID("9a4c6e1f-3b7d-4e2a-8f5c-0d1b2a3c4e5f")
MAX_UPLOAD_ROWS = 2_000
UTF8_BOM = b"\xef\xbb\xbf"

FieldOf = Callable[[Sequence[str | int]], str]

CSV_COLUMNS = (
    "external_id",
    "type",
    "question",
    "correct",
    "max_marks",
    "negative_marks",
    "partial_credit",
    "rubric",
    "coding",
    "position",
)
REQUIRED_CSV_COLUMNS = ("type", "question", "max_marks")
OPTION_COLUMN = re.compile(r"option_([1-9][0-9]{0,2})")
# An option number in the `correct` column: ASCII digits, 1 up to the most options.
OPTION_NUMBER = re.compile(r"[1-9][0-9]{0,2}")
# Option numbers in the `correct` column: "2", "1;3", "1, 3" or "1 3".
CORRECT_SEPARATOR = re.compile(r"[;,\s]+")


class UploadFileError(Exception):
    """The file as a whole cannot be read: nothing in it is imported."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        super().__init__("; ".join(p.reason for p in problems))
        self.problems = list(problems)


class UploadTooLarge(Exception):
    """The file has more rows than one upload may import."""


@dataclass(frozen=True)
class RowProblem:
    """One thing wrong with an upload: the row (None for the whole file), the field
    (None when no single field is at fault) and why."""

    row: int | None
    field: str | None
    reason: str


@dataclass(frozen=True)
class UploadRow:
    """A good row: its number, the checked question and the id it imports as."""

    row: int
    question: UploadedQuestion
    question_id: uuid.UUID


@dataclass
class ParsedUpload:
    """Every data row of a file, good or bad."""

    rows: int = 0
    good: list[UploadRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        """How many rows have at least one problem."""
        return len({p.row for p in self.problems if p.row is not None})


# --- request bodies -----------------------------------------------------------------


def multipart_file(content_type: str, body: bytes) -> bytes:
    """The bytes of the uploaded file in a multipart/form-data body: the part named
    `file`, or else the only part that carries a file name."""
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode(
        "latin-1", "replace"
    )
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = [p for p in parts if p.get_param("name", header="content-disposition") == "file"]
    with_filename = [p for p in parts if p.get_filename()]
    chosen = named[:1] or (with_filename if len(with_filename) == 1 else [])
    if not chosen:
        raise UploadFileError(
            [RowProblem(None, "file", "the multipart body has no part named file")]
        )
    payload = chosen[0].get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def decode_utf8(data: bytes, *, count_csv_rows: bool) -> str:
    """The file's text; a byte sequence that is not UTF-8 is a problem at its row
    (CSV: the spreadsheet row, header = 1) or its line (JSON). A leading byte-order
    mark, as spreadsheet programs write, is dropped."""
    data = data.removeprefix(UTF8_BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"byte 0x{data[exc.start]:02x} on line {line}"
        row: int | None = None
        if count_csv_rows:
            row = line
            line_start = data.rfind(b"\n", 0, exc.start) + 1
            # Records before the bad line, as cells may span lines; else the line.
            with contextlib.suppress(csv.Error):
                row = sum(1 for _ in csv.reader(io.StringIO(data[:line_start].decode()))) + 1
        raise UploadFileError(
            [RowProblem(row, None, f"the file is not UTF-8 ({where}); save it as UTF-8")]
        ) from exc


# --- checking one question ----------------------------------------------------------


def question_id_for(contest_id: uuid.UUID, question: UploadedQuestion) -> uuid.UUID:
    """The question's deterministic id (see the module docstring)."""
    if question.external_id is not None:
        name = f"{contest_id}/external_id/{question.external_id}"
    else:
        identity = {
            "type": question.type.value,
            "question": question.content.question,
            "options": question.content.options,
        }
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        name = f"{contest_id}/sha256/{hashlib.sha256(canonical.encode()).hexdigest()}"
    return uuid.uuid5(UPLOAD_NAMESPACE, name)


def _loc_path(loc: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def check_question(
    row: int, item: object, field_of: FieldOf = _loc_path
) -> UploadedQuestion | list[RowProblem]:
    """The checked question of one row, or every problem with it. `field_of` names the
    field of a location in the item (CSV rows name their columns)."""
    try:
        question = UploadedQuestion.model_validate(item)
    except ValidationError as exc:
        return [RowProblem(row, field_of(error["loc"]), error["msg"]) for error in exc.errors()]
    content = question.content
    key_field, key, problems = requested_answer_key(content.correct_answer, content.correct_answers)
    if not problems:
        problems = answer_key_problems(
            question.type,
            content.options,
            key or [],
            partial_credit=question.scoring.partial_credit,
            key_field=key_field,
        )
    problems += question_detail_problems(question.type, content.rubric, content.coding)
    if problems:
        return [RowProblem(row, field_of(p.loc), p.message) for p in problems]
    return question


def _collect(
    parsed: ParsedUpload,
    contest_id: uuid.UUID,
    row: int,
    item: object,
    field_of: FieldOf,
    seen: dict[uuid.UUID, int],
    extra: Sequence[RowProblem] = (),
) -> None:
    checked = check_question(row, item, field_of)
    if isinstance(checked, list):
        reported = {p.field for p in extra}
        parsed.problems += [*extra, *(p for p in checked if p.field not in reported)]
        return
    if extra:
        parsed.problems += extra
        return
    question_id = question_id_for(contest_id, checked)
    if question_id in seen:
        where = "external_id" if checked.external_id is not None else None
        what = "external_id" if where else "type, text and options"
        parsed.problems.append(
            RowProblem(row, where, f"same {what} as row {seen[question_id]}: one question twice")
        )
        return
    seen[question_id] = row
    parsed.good.append(UploadRow(row, checked, question_id))


# --- JSON ---------------------------------------------------------------------------


def parse_json_upload(data: bytes, contest_id: uuid.UUID) -> ParsedUpload:
    """A JSON upload: a list of questions, or an object whose `questions` is that list.

    Each item has the shape of a create body without `contest_id`, plus an optional
    `external_id`; row N is the N-th item (from 1), fields are dotted paths.
    """
    text = decode_utf8(data, count_csv_rows=False)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UploadFileError(
            [
                RowProblem(
                    None,
                    None,
                    f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                )
            ]
        ) from exc
    except RecursionError as exc:  # deeply nested arrays
        raise UploadFileError([RowProblem(None, None, "JSON nested too deeply")]) from exc
    except ValueError as exc:  # well-formed but unreadable: an integer of 5,000 digits
        raise UploadFileError([RowProblem(None, None, f"unreadable JSON: {exc}")]) from exc
    if isinstance(document, dict) and set(document) == {"questions"}:
        document = document["questions"]
    if not isinstance(document, list):
        raise UploadFileError(
            [
                RowProblem(
                    None,
                    None,
                    'expected a list of questions, or {"questions": [...]}',
                )
            ]
        )
    if len(document) > MAX_UPLOAD_ROWS:
        raise UploadTooLarge(f"{len(document)} questions; one upload takes {MAX_UPLOAD_ROWS}")
    parsed = ParsedUpload(rows=len(document))
    seen: dict[uuid.UUID, int] = {}
    for number, item in enumerate(document, start=1):
        _collect(parsed, contest_id, number, item, _loc_path, seen)
    return parsed


# --- CSV ----------------------------------------------------------------------------


def csv_field(loc: Sequence[str | int]) -> str:
    """The CSV column a location in a question is read from."""
    match tuple(loc):
        case ("content", "options", int(index), *_):
            return f"option_{index + 1}"
        case ("content", "options", *_):
            return "option_1"
        case ("content", "correct_answer" | "correct_answers", *_):
            return "correct"
        case ("content", "coding", *rest):
            return _loc_path(["coding", *rest])
        case ("content", name, *_) | ("scoring", name, *_):
            return str(name)
        case ("content",) | ("scoring",):
            return "question" if loc[0] == "content" else "max_marks"
        case _:
            return _loc_path(loc)


def _delimiter(text: str) -> str:
    """Comma, unless the header line has none and semicolons or tabs instead (as
    spreadsheet programs in some locales save)."""
    header = text.split("\n", 1)[0]
    if "," in header:
        return ","
    if ";" in header:
        return ";"
    return "\t" if "\t" in header else ","


def _header(cells: list[str]) -> tuple[list[str], list[RowProblem]]:
    names = [cell.strip().lower() for cell in cells]
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            problems.append(RowProblem(1, name, "the column appears twice"))
        seen.add(name)
        if name and name not in CSV_COLUMNS and not OPTION_COLUMN.fullmatch(name):
            problems.append(
                RowProblem(
                    1,
                    name,
                    f"unknown column; columns are {', '.join(CSV_COLUMNS)} and option_1,"
                    " option_2, ...",
                )
            )
    for required in REQUIRED_CSV_COLUMNS:
        if required not in seen:
            problems.append(RowProblem(1, required, "required column missing"))
    # `correct` refers to options by column number, so the numbers must leave no gap.
    numbers = sorted(int(m.group(1)) for name in seen if (m := OPTION_COLUMN.fullmatch(name)))
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(
            RowProblem(1, "option_1", "option columns must be option_1, option_2, ... without gaps")
        )
    return names, problems


def csv_item(row: int, cells: dict[str, str]) -> tuple[dict[str, Any], list[RowProblem]]:
    """A CSV row as a question item, and problems with cells that could not be read."""
    problems: list[RowProblem] = []
    content: dict[str, Any] = {"question": cells.get("question", "")}
    scoring: dict[str, Any] = {}
    item: dict[str, Any] = {
        "type": cells.get("type", "").strip(),
        "content": content,
        "scoring": scoring,
    }
    if external_id := cells.get("external_id", "").strip():
        item["external_id"] = external_id
    for column in ("max_marks", "negative_marks", "partial_credit"):
        if value := cells.get(column, "").strip():
            scoring[column] = value
    if position := cells.get("position", "").strip():
        item["position"] = position

    numbered = sorted(
        (int(match.group(1)), value.strip())
        for name, value in cells.items()
        if (match := OPTION_COLUMN.fullmatch(name))
    )
    last = max((number for number, value in numbered if value), default=0)
    options = []
    for number, value in numbered:
        if number > last:
            break
        if not value:
            problems.append(
                RowProblem(
                    row,
                    f"option_{number}",
                    f"empty, but option_{last} is given; number options without gaps",
                )
            )
        options.append(value)
    content["options"] = options

    if correct := cells.get("correct", "").strip():
        numbers = [part for part in CORRECT_SEPARATOR.split(correct) if part]
        if all(OPTION_NUMBER.fullmatch(part) for part in numbers):
            content["correct_answers"] = [int(part) - 1 for part in numbers]
            # Said here in option numbers; the shared rules would say it in indices.
            missing = sorted({int(part) for part in numbers if int(part) > len(options)})
            if options and missing:
                problems.append(
                    RowProblem(
                        row,
                        "correct",
                        f"option {', '.join(map(str, missing))} is not in this row: it has"
                        f" options 1 to {len(options)}",
                    )
                )
        else:
            problems.append(
                RowProblem(row, "correct", "give option numbers (1 for option_1), e.g. 2 or 1;3")
            )
    if rubric := cells.get("rubric", ""):
        content["rubric"] = rubric
    if coding := cells.get("coding", "").strip():
        try:
            content["coding"] = json.loads(coding)
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                message = f"not valid JSON: {exc.msg}"
            elif isinstance(exc, RecursionError):
                message = "not valid JSON: nested too deeply"
            else:  # well-formed but unreadable: an integer of 5,000 digits
                message = f"unreadable JSON: {exc}"
            problems.append(RowProblem(row, "coding", message))
    return item, problems


def parse_csv_upload(data: bytes, contest_id: uuid.UUID) -> ParsedUpload:
    """A CSV upload: a header row naming the columns, then one question per row.

    Rows are numbered as a spreadsheet shows them (the header is row 1); blank rows
    are skipped.
    """
    text = decode_utf8(data, count_csv_rows=True)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    parsed = ParsedUpload()
    seen: dict[uuid.UUID, int] = {}
    names: list[str] = []
    row = 0
    try:
        for row, cells in enumerate(reader, start=1):
            if row == 1:
                names, header_problems = _header(cells)
                if header_problems:
                    raise UploadFileError(header_problems)
                continue
            if not any(cell.strip() for cell in cells):
                continue
            parsed.rows += 1
            if parsed.rows > MAX_UPLOAD_ROWS:
                raise UploadTooLarge(f"more than {MAX_UPLOAD_ROWS} rows; split the file")
            extra: list[RowProblem] = []
            if len(cells) > len(names):
                extra.append(
                    RowProblem(
                        row, None, f"the row has {len(cells)} cells; the header has {len(names)}"
                    )
                )
            values = dict(zip(names, cells, strict=False))
            values.pop("", None)  # an unnamed column (a trailing comma) is ignored
            item, cell_problems = csv_item(row, values)
            _collect(parsed, contest_id, row, item, csv_field, seen, [*extra, *cell_problems])
    except csv.Error as exc:
        raise UploadFileError(
            [RowProblem(row + 1, None, f"malformed CSV: {exc}; nothing was imported")]
        ) from exc
    if row == 0:
        raise UploadFileError([RowProblem(None, None, "the file is empty")])
    return parsed
