"""Bulk question uploads: the documented examples, row-level errors, idempotency, limits."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from elevate.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.integration

UPLOAD = "/api/v1/admin/questions/upload"
EXAMPLES = Path(PROJECT_ROOT) / "examples"
NewContest = Callable[..., Awaitable[dict[str, Any]]]

HEADER = "external_id,type,question,option_1,option_2,option_3,correct,max_marks"


async def _questions(
    client: httpx.AsyncClient, headers: dict[str, str], contest_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/admin/questions/", params={"contest_id": contest_id}, headers=headers
    )
    assert response.status_code == 200, response.text
    questions: list[dict[str, Any]] = response.json()["items"]
    return questions


def _csv(*rows: str, header: str = HEADER) -> bytes:
    return "\n".join([header, *rows]).encode()


async def test_both_examples_upload_and_describe_the_same_questions(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    csv_bytes = (EXAMPLES / "questions.csv").read_bytes()
    json_bytes = (EXAMPLES / "questions.json").read_bytes()

    from_csv = await client.post(
        f"{UPLOAD}/csv",
        params={"contest_id": contest["id"]},
        files={"file": ("questions.csv", csv_bytes, "text/csv")},
        headers=admin_headers,
    )
    from_json = await client.post(
        f"{UPLOAD}/json",
        params={"contest_id": contest["id"]},
        content=json_bytes,
        headers={**admin_headers, "Content-Type": "application/json"},
    )

    assert from_csv.status_code == 200, from_csv.text
    report = from_csv.json()
    assert (report["rows"], report["created"], report["rejected"]) == (4, 4, 0)
    assert [q["row"] for q in report["questions"]] == [2, 3, 4, 5]
    assert from_json.status_code == 200, from_json.text
    # Same external ids, same content: the JSON file finds the CSV file's questions.
    assert (from_json.json()["unchanged"], from_json.json()["created"]) == (4, 0)
    questions = await _questions(client, admin_headers, contest["id"])
    assert [q["external_id"] for q in questions] == ["py-001", "py-002", "py-003", "py-004"]
    assert [q["position"] for q in questions] == [0, 1, 2, 3]
    mcq_single, mcq_multi, subjective, coding = questions
    assert mcq_single["content"]["correct_answers"] == [1]
    assert mcq_single["scoring"] == {
        "max_marks": 4.0,
        "negative_marks": 1.0,
        "partial_credit": False,
    }
    assert mcq_multi["content"]["correct_answers"] == [0, 2]
    assert mcq_multi["scoring"]["partial_credit"] is True
    assert subjective["content"]["rubric"].count("\n") == 2
    assert coding["content"]["coding"]["languages"] == ["python3", "cpp17", "java17"]
    assert coding["content"]["coding"]["hidden_tests"][2]["weight"] == 2.0


async def test_uploading_the_same_file_again_creates_nothing(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = (EXAMPLES / "questions.json").read_bytes()
    url, params = f"{UPLOAD}/json", {"contest_id": contest["id"]}

    first = await client.post(
        url, params=params, files={"file": ("q.json", body)}, headers=admin_headers
    )
    second = await client.post(
        url, params=params, files={"file": ("q.json", body)}, headers=admin_headers
    )

    assert first.json()["created"] == 4
    assert (second.json()["created"], second.json()["unchanged"]) == (0, 4)
    assert [q["question_id"] for q in second.json()["questions"]] == [
        q["question_id"] for q in first.json()["questions"]
    ]
    assert len(await _questions(client, admin_headers, contest["id"])) == 4


async def test_without_external_id_the_text_names_the_question(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    url, params = f"{UPLOAD}/csv", {"contest_id": contest["id"]}

    async def upload(*rows: str) -> dict[str, Any]:
        response = await client.post(url, params=params, content=_csv(*rows), headers=admin_headers)
        assert response.status_code == 200, response.text
        report: dict[str, Any] = response.json()
        return report

    first = await upload(",mcq,2+2?,3,4,5,2,1", ",mcq,3+3?,5,6,7,2,1")
    same = await upload(",mcq,2+2?,3,4,5,2,1", ",mcq,3+3?,5,6,7,2,1")
    corrected = await upload(",mcq,2+2?,3,4,5,2,5")  # new marks: the same question
    reworded = await upload(",mcq,2 + 2?,3,4,5,2,5")  # new text: a new question

    assert first["created"] == 2
    assert same["unchanged"] == 2
    assert corrected["updated"] == 1
    assert corrected["questions"][0]["question_id"] == first["questions"][0]["question_id"]
    assert reworded["created"] == 1
    questions = await _questions(client, admin_headers, contest["id"])
    assert [(q["content"]["question"], q["scoring"]["max_marks"]) for q in questions] == [
        ("2+2?", 5.0),
        ("3+3?", 1.0),
        ("2 + 2?", 5.0),
    ]


async def test_every_bad_row_is_reported_and_nothing_imported(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = _csv(
        "a,mcq,Good?,yes,no,,1,2",
        "b,mcq,Key out of range?,yes,no,,5,2",
        "c,mcq,Marks?,yes,no,,1,lots",
        "",  # a blank row is skipped, but still numbered like a spreadsheet's
        "d,essay,Type?,,,,,2",
        "e,mcq,Gap?,yes,,no,1,2",
        "a,mcq,Same external id?,yes,no,,1,2",
        "f,subjective,Options?,yes,no,,,2",
    )

    response = await client.post(
        f"{UPLOAD}/csv",
        params={"contest_id": contest["id"]},
        content=body,
        headers={**admin_headers, "Content-Type": "text/csv"},
    )

    assert response.status_code == 422, response.text
    report = response.json()
    assert report["detail"].startswith("6 of 7 rows are invalid; nothing was imported")
    assert (report["rows"], report["rejected"], report["created"]) == (7, 6, 0)
    problems = {(e["row"], e["field"]) for e in report["errors"]}
    assert problems == {
        (3, "correct"),
        (4, "max_marks"),
        (6, "type"),
        (7, "option_2"),
        (8, "external_id"),
        (9, "option_1"),
    }
    reasons = {(e["row"], e["field"]): e["reason"] for e in report["errors"]}
    assert reasons[(3, "correct")] == "option 5 is not in this row: it has options 1 to 2"
    assert "same external_id as row 2" in reasons[(8, "external_id")]
    assert await _questions(client, admin_headers, contest["id"]) == []


async def test_partial_imports_the_good_rows(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    items = [
        {
            "type": "mcq",
            "content": {"question": "Q1", "options": ["a", "b"], "correct_answer": 0},
            "scoring": {"max_marks": 1},
        },
        {
            "type": "mcq_multi",
            "content": {"question": "Q2", "options": ["a", "b"], "correct_answers": []},
            "scoring": {"max_marks": 1},
        },
        {"type": "subjective", "content": {"question": "Q3"}, "scoring": {"max_marks": -1}},
        "not an object",
    ]

    response = await client.post(
        f"{UPLOAD}/json",
        params={"contest_id": contest["id"], "partial": "true"},
        json=items,
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["created"], report["rejected"]) == (4, 1, 3)
    assert {(e["row"], e["field"]) for e in report["errors"]} == {
        (2, "content.correct_answers"),
        (3, "scoring.max_marks"),
        (4, ""),
    }
    assert [
        q["content"]["question"] for q in await _questions(client, admin_headers, contest["id"])
    ] == ["Q1"]


async def test_a_file_that_is_not_utf8_is_reported_at_its_row(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = _csv('a,mcq,"two\nlines",x,y,,1,1', "b,mcq,Caf\xe9?,x,y,,1,1").replace(
        "Café".encode(), "Café".encode("latin-1")
    )

    response = await client.post(
        f"{UPLOAD}/csv", params={"contest_id": contest["id"]}, content=body, headers=admin_headers
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["row"] == 3  # the header, a two-line row, then the bad one
    assert "not UTF-8 (byte 0xe9 on line 4)" in error["reason"]


async def test_spreadsheet_csv_with_bom_and_semicolons(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    body = "\ufeffType;Question;Option_1;Option_2;Correct;Max_Marks\r\nmcq;Q?;a;b;2;3\r\n"

    response = await client.post(
        f"{UPLOAD}/csv",
        params={"contest_id": contest["id"]},
        content=body.encode(),
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    [question] = await _questions(client, admin_headers, contest["id"])
    assert question["content"]["correct_answers"] == [1]


@pytest.mark.parametrize(
    ("kind", "body", "row", "field", "reason"),
    [
        ("csv", b"type,question,max_marks,colour\n", 1, "colour", "unknown column"),
        ("csv", b"type,question\n", 1, "max_marks", "required column missing"),
        ("csv", b"type,question,max_marks,option_1,option_3\n", 1, "option_1", "without gaps"),
        ("csv", b"", None, None, "the file is empty"),
        ("csv", b"type,question,max_marks\n", None, None, "the file has no questions"),
        ("json", b'[{"type": "mcq",', None, None, "not valid JSON"),
        ("json", b'{"items": []}', None, None, "expected a list of questions"),
        ("json", b"[]", None, None, "the file has no questions"),
    ],
)
async def test_unreadable_files_are_422(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    kind: str,
    body: bytes,
    row: int | None,
    field: str | None,
    reason: str,
) -> None:
    contest = await new_contest()

    response = await client.post(
        f"{UPLOAD}/{kind}",
        params={"contest_id": contest["id"]},
        content=body,
        headers=admin_headers,
    )

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any((e["row"], e["field"]) == (row, field) and reason in e["reason"] for e in errors), (
        errors
    )


async def test_json_field_names_that_cannot_be_encoded_are_still_reported(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    response = await client.post(
        f"{UPLOAD}/json",
        params={"contest_id": contest["id"]},
        content=b'[{"\\ud800": 1}]',
        headers=admin_headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["row"] == 1


async def test_multipart_without_a_file_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    response = await client.post(
        f"{UPLOAD}/csv",
        params={"contest_id": contest["id"]},
        # Two files, neither named "file": which one to import is unclear.
        files={"first": ("a.csv", b"type"), "second": ("b.csv", b"type")},
        headers=admin_headers,
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "file"


async def test_oversized_uploads_are_413(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    api_settings: Settings,
    new_contest: NewContest,
) -> None:
    contest = await new_contest()
    params = {"contest_id": contest["id"]}
    too_big = b"x" * (api_settings.max_upload_bytes + 1)

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(too_big), 1 << 20):
            yield too_big[start : start + (1 << 20)]

    declared = await client.post(
        f"{UPLOAD}/csv", params=params, content=too_big, headers=admin_headers
    )
    streamed = await client.post(
        f"{UPLOAD}/csv", params=params, content=chunked(), headers=admin_headers
    )
    many_rows = await client.post(
        f"{UPLOAD}/json", params=params, content=json.dumps([{}] * 2001), headers=admin_headers
    )

    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert "larger than" in declared.json()["detail"]
    assert many_rows.status_code == 413
    assert "2000" in many_rows.json()["detail"]


async def test_upload_refusals(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    grader_headers: dict[str, str],
    new_contest: NewContest,
) -> None:
    draft = await new_contest()
    published = await new_contest(questions=1)
    await client.post(f"/api/v1/admin/contests/{published['id']}/publish/", headers=admin_headers)
    body = _csv("a,mcq,Q?,x,y,,1,1")

    async def upload(headers: dict[str, str], **params: str) -> int:
        response = await client.post(f"{UPLOAD}/csv", params=params, content=body, headers=headers)
        return response.status_code

    assert await upload(admin_headers, contest_id=published["id"]) == 409
    assert await upload(admin_headers, contest_id=str(uuid.uuid4())) == 404
    assert await upload(admin_headers) == 422
    assert await upload(grader_headers, contest_id=draft["id"]) == 403
