"""Contests: creation rules, listing, editing drafts, publishing to Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError

from avro_schemas.records import Record

pytestmark = pytest.mark.integration

CONTESTS = "/api/v1/admin/contests/"
NewContest = Callable[..., Awaitable[dict[str, Any]]]


def _errors(response: httpx.Response) -> dict[tuple[str | int, ...], str]:
    """A 422's field errors as {loc: msg}."""
    assert response.status_code == 422, response.text
    return {tuple(error["loc"]): error["msg"] for error in response.json()["detail"]}


async def test_create_contest_stores_minutes_as_seconds(
    client: httpx.AsyncClient, admin_headers: dict[str, str], contest_body: dict[str, Any]
) -> None:
    response = await client.post(CONTESTS, json=contest_body, headers=admin_headers)

    assert response.status_code == 201, response.text
    contest = response.json()
    assert contest["duration_seconds"] == 120 * 60
    assert contest["status"] == "draft"
    assert contest["published_at"] is None
    assert uuid.UUID(contest["id"]).version == 4
    assert datetime.fromisoformat(contest["start_at"]) == datetime(2024, 11, 1, 10, tzinfo=UTC)


async def test_create_contest_accepts_seconds_and_offsets(
    client: httpx.AsyncClient, admin_headers: dict[str, str], contest_body: dict[str, Any]
) -> None:
    del contest_body["duration_minutes"]
    body = {
        **contest_body,
        "start_at": "2024-11-01T15:30:00+05:30",
        "duration_seconds": 90,
    }

    response = await client.post(CONTESTS.rstrip("/"), json=body, headers=admin_headers)

    assert response.status_code == 201, response.text
    assert response.json()["duration_seconds"] == 90
    assert datetime.fromisoformat(response.json()["start_at"]) == datetime(
        2024, 11, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("changes", "loc", "message"),
    [
        ({"start_at": "2024-11-01T10:00:00"}, ("body", "start_at"), "timezone"),
        ({"end_at": "2024-11-01T09:00:00Z"}, ("body", "end_at"), "end_at must be after start_at"),
        ({"end_at": "2024-11-01T10:00:00Z"}, ("body", "end_at"), "end_at must be after start_at"),
        (
            {"duration_minutes": 121},
            ("body", "duration_minutes"),
            "the duration (121 minutes) is longer than the window between start_at and end_at"
            " (120 minutes)",
        ),
        (
            {"duration_minutes": None, "duration_seconds": 7201},
            ("body", "duration_seconds"),
            "longer than the window",
        ),
        ({"duration_minutes": 0}, ("body", "duration_minutes"), "greater than 0"),
        (
            {"duration_minutes": None},
            ("body", "duration_minutes"),
            "give duration_minutes or duration_seconds",
        ),
        (
            {"duration_seconds": 60},
            ("body", "duration_seconds"),
            "give duration_minutes or duration_seconds, not both",
        ),
        ({"name": ""}, ("body", "name"), "at least 1 character"),
        ({"name": "bad\x00name"}, ("body", "name"), "NUL"),
        ({"start_at": "0001-01-01T00:00:00+05:00"}, ("body", "start_at"), "out of range"),
        ({"status": "published"}, ("body", "status"), "Extra inputs are not permitted"),
    ],
)
async def test_create_contest_validation(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    contest_body: dict[str, Any],
    changes: dict[str, Any],
    loc: tuple[str, ...],
    message: str,
) -> None:
    body = {**contest_body, **changes}
    body = {key: value for key, value in body.items() if value is not None}

    response = await client.post(CONTESTS, json=body, headers=admin_headers)

    errors = _errors(response)
    assert loc in errors, errors
    assert message in errors[loc]


async def test_malformed_json_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        CONTESTS,
        content=b"{not json",
        headers={**admin_headers, "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_list_contests_filters_and_pages(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    marker = uuid.uuid4().hex
    created = [await new_contest(name=f"{marker}-{n}") for n in range(3)]

    first = await client.get(
        CONTESTS, params={"limit": 2, "offset": 0, "status": "draft"}, headers=admin_headers
    )
    published = await client.get(CONTESTS, params={"status": "published"}, headers=admin_headers)

    assert first.status_code == 200
    page = first.json()
    assert page["limit"] == 2 and page["offset"] == 0
    assert page["total"] >= 3
    # Newest first: the last two created lead the list.
    assert [c["id"] for c in page["items"]] == [created[2]["id"], created[1]["id"]]
    assert all(c["status"] == "published" for c in published.json()["items"])


async def test_list_contests_searches_names(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    marker = uuid.uuid4().hex[:12]
    python = await new_contest(name=f"Python {marker} 100%_sure")
    await new_contest(name=f"Java {marker}")
    published = await new_contest(questions=1, name=f"Advanced PYTHON {marker}")
    await client.post(f"{CONTESTS}{published['id']}/publish/", headers=admin_headers)

    found = await client.get(CONTESTS, params={"search": f"python {marker}"}, headers=admin_headers)
    drafts = await client.get(
        CONTESTS, params={"search": f"python {marker}", "status": "draft"}, headers=admin_headers
    )
    # % and _ are matched literally, not as LIKE wildcards.
    literal = await client.get(CONTESTS, params={"search": "100%_sure"}, headers=admin_headers)
    wildcard = await client.get(CONTESTS, params={"search": f"{marker}%"}, headers=admin_headers)

    assert found.status_code == 200
    assert {c["id"] for c in found.json()["items"]} == {python["id"], published["id"]}
    assert found.json()["total"] == 2
    assert [c["id"] for c in drafts.json()["items"]] == [python["id"]]
    assert python["id"] in [c["id"] for c in literal.json()["items"]]
    assert wildcard.json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"status": "archived"},
        {"search": ""},
        {"search": "nul\x00"},
        {"search": "x" * 201},
    ],
)
async def test_list_contests_bad_parameters_are_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], params: dict[str, Any]
) -> None:
    response = await client.get(CONTESTS, params=params, headers=admin_headers)

    assert response.status_code == 422


async def test_get_contest_with_questions_and_keys(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest(questions=2)

    response = await client.get(f"{CONTESTS}{contest['id']}/", headers=admin_headers)
    without_slash = await client.get(f"{CONTESTS}{contest['id']}", headers=admin_headers)

    assert response.status_code == 200
    assert without_slash.json() == response.json()
    questions = response.json()["questions"]
    assert [q["position"] for q in questions] == [0, 1]
    assert questions[0]["content"]["correct_answers"] == [2]


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_unknown_contest_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str], method: str
) -> None:
    missing = uuid.uuid4()
    response = await client.request(
        method, f"{CONTESTS}{missing}/", json={"name": "x"}, headers=admin_headers
    )

    assert response.status_code == 404
    assert response.json() == {"detail": f"contest {missing} not found"}


async def test_publish_unknown_contest_is_404(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    response = await client.post(f"{CONTESTS}{uuid.uuid4()}/publish/", headers=admin_headers)

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/admin/contests/not-a-uuid/",
        "/api/v1/admin/contests/not-a-uuid/publish/",
        "/api/v1/admin/contests/12345/leaderboard/",
        "/api/v1/admin/questions/not-a-uuid/",
        "/api/v1/admin/attempts/not-a-uuid/",
    ],
)
async def test_invalid_uuid_in_path_is_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], path: str
) -> None:
    method = "POST" if path.endswith("publish/") else "GET"
    response = await client.request(method, path, headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "path"


async def test_patch_draft_contest(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    response = await client.patch(
        f"{CONTESTS}{contest['id']}/",
        json={"name": "Renamed", "end_at": "2024-11-01T13:00:00Z", "duration_minutes": 180},
        headers=admin_headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["duration_seconds"] == 180 * 60
    assert response.json()["description"] == contest["description"]


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"end_at": "2024-11-01T11:00:00Z"}, ("body", "duration_seconds")),
        ({"start_at": "2024-11-01T13:00:00Z"}, ("body", "end_at")),
        ({"name": None}, ("body", "name")),
        ({"status": "published"}, ("body", "status")),
    ],
)
async def test_patch_contest_keeps_the_rules(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    patch: dict[str, Any],
    loc: tuple[str, ...],
) -> None:
    contest = await new_contest()

    response = await client.patch(f"{CONTESTS}{contest['id']}/", json=patch, headers=admin_headers)

    assert loc in _errors(response)


async def test_publish_without_questions_is_409(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()

    response = await client.post(f"{CONTESTS}{contest['id']}/publish/", headers=admin_headers)

    assert response.status_code == 409
    assert "no questions" in response.json()["detail"]


async def test_publish_sends_questions_then_contest(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    definitions_tail: Callable[[], Any],
) -> None:
    contest = await new_contest(questions=3)
    contest_id = contest["id"]

    async with definitions_tail() as tail:
        response = await client.post(f"{CONTESTS}{contest_id}/publish/", headers=admin_headers)
        assert response.status_code == 200, response.text
        first = await tail.read(4)
        again = await client.post(f"{CONTESTS}{contest_id}/publish", headers=admin_headers)
        assert again.status_code == 200, again.text
        second = await tail.read(4)

    published = response.json()
    question_ids = [q["id"] for q in published["questions"]]
    assert published["status"] == "published"
    assert published["published_at"] is not None

    assert [d.name for _, d in first] == [Record.QUESTION_DEFINITION] * 3 + [
        Record.CONTEST_DEFINITION
    ]
    assert [key for key, _ in first] == [*question_ids, contest_id]
    question = first[0][1].value
    assert question["contest_id"] == contest_id
    assert question["kind"] == "mcq_single"
    assert question["options"] == ["2", "3", "4", "5"]
    assert question["correct_options"] == [2]
    assert question["max_marks"] == 10.0
    definition = first[-1][1].value
    assert definition["question_ids"] == question_ids
    assert definition["duration_seconds"] == 7200
    assert definition["start_at"] == datetime(2024, 11, 1, 10, tzinfo=UTC)
    assert definition["published_at"] == datetime.fromisoformat(published["published_at"])

    # Publishing again re-sends exactly the same definitions.
    assert again.json() == published
    assert [(k, d.name, d.value) for k, d in second] == [(k, d.name, d.value) for k, d in first]


async def test_published_contest_cannot_be_edited(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest(questions=1)
    published = await client.post(f"{CONTESTS}{contest['id']}/publish/", headers=admin_headers)
    question_id = published.json()["questions"][0]["id"]

    patched = await client.patch(
        f"{CONTESTS}{contest['id']}/", json={"name": "Too late"}, headers=admin_headers
    )
    added = await client.post(
        "/api/v1/admin/questions/",
        json={
            "contest_id": contest["id"],
            "type": "subjective",
            "content": {"question": "Why?"},
            "scoring": {"max_marks": 5},
        },
        headers=admin_headers,
    )
    changed = await client.patch(
        f"/api/v1/admin/questions/{question_id}/",
        json={"scoring": {"max_marks": 1}},
        headers=admin_headers,
    )
    deleted = await client.delete(f"/api/v1/admin/questions/{question_id}/", headers=admin_headers)

    for response in (patched, added, changed, deleted):
        assert response.status_code == 409, response.text
        assert "regrade" in response.json()["detail"]


async def test_openapi_documents_the_declared_paths(client: httpx.AsyncClient) -> None:
    schema = await client.get("/api/openapi.json")
    docs = await client.get("/api/docs")

    assert schema.status_code == 200
    assert docs.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/admin/contests/{contest_id}/publish/" in paths
    assert "/api/v1/admin/contests/{contest_id}/publish" not in paths
    assert "/api/v1/auth/token/" in paths


async def test_unknown_route_is_404_with_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\\ud800", "start_at": "2024-11-01T10:00:00Z",'
        b' "end_at": "2024-11-01T12:00:00Z", "duration_minutes": 60}',
        b'{"name": "x", "start_at": "2024-11-01T10:00:00Z",'
        b' "end_at": "2024-11-01T12:00:00Z", "duration_minutes": NaN}',
        b'{"name": "x", "start_at": "2024-11-01T10:00:00Z",'
        b' "end_at": "2024-11-01T12:00:00Z", "duration_minutes": 60, "extra": -Infinity}',
    ],
)
async def test_input_json_cannot_encode_is_still_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], raw: bytes
) -> None:
    # Python's JSON parser takes lone surrogates and NaN; echoing them must not fail.
    response = await client.post(
        CONTESTS, content=raw, headers={**admin_headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_publish_retries_after_kafka_fails(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    new_contest: NewContest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contest = await new_contest(questions=1)

    async def broker_down(*args: object, **kwargs: object) -> None:
        raise KafkaConnectionError("broker unreachable")

    with monkeypatch.context() as patched:
        patched.setattr("api.publishing.send_record", broker_down)
        failed = await client.post(f"{CONTESTS}{contest['id']}/publish/", headers=admin_headers)
    stored = await client.get(f"{CONTESTS}{contest['id']}/", headers=admin_headers)
    retried = await client.post(f"{CONTESTS}{contest['id']}/publish/", headers=admin_headers)

    assert failed.status_code == 503
    assert "publish again to retry" in failed.json()["detail"]
    assert stored.json()["status"] == "published"
    assert retried.status_code == 200
    assert retried.json()["published_at"] == stored.json()["published_at"]
