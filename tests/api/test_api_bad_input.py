"""Input that once answered 500: each is now a 422 (or 413) naming what is wrong, with
nothing changed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pydantic
import pytest

from api.schemas import POSITION_MAX, QuestionRegrade
from tests.api.conftest import mcq_body

pytestmark = pytest.mark.integration

NewContest = Callable[..., Awaitable[dict[str, Any]]]
LONE_SURROGATE = "\udfff"


async def send_json(
    client: httpx.AsyncClient, method: str, url: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """Send `body` as ASCII JSON: a lone surrogate travels as its escape, as a browser
    or any JSON library may send it."""
    return await client.request(
        method,
        url,
        content=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


async def test_a_lone_surrogate_in_text_is_a_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    described = await send_json(
        client,
        "PATCH",
        f"/api/v1/admin/contests/{contest['id']}/",
        {"description": f"bad {LONE_SURROGATE}"},
        admin_headers,
    )
    body = mcq_body(contest["id"])
    body["content"]["options"][0] = LONE_SURROGATE
    asked = await send_json(client, "POST", "/api/v1/admin/questions/", body, admin_headers)

    assert described.status_code == 422, described.text
    assert "Unicode" in described.text
    assert asked.status_code == 422, asked.text
    assert ["body", "content", "options", 0] in [e["loc"] for e in asked.json()["detail"]]


def test_a_regrade_reason_that_cannot_be_stored_is_refused_before_anything_changes() -> None:
    with pytest.raises(pydantic.ValidationError, match="Unicode"):
        QuestionRegrade.model_validate({"correct_answer": 1, "reason": LONE_SURROGATE})


async def test_positions_stay_far_from_the_integer_limit(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    too_far = await client.post(
        "/api/v1/admin/questions/",
        json={**mcq_body(contest["id"]), "position": POSITION_MAX + 1},
        headers=admin_headers,
    )
    last = await client.post(
        "/api/v1/admin/questions/",
        json={**mcq_body(contest["id"]), "position": POSITION_MAX},
        headers=admin_headers,
    )
    after_it = await client.post(
        "/api/v1/admin/questions/", json=mcq_body(contest["id"]), headers=admin_headers
    )

    assert too_far.status_code == 422, too_far.text
    assert last.status_code == 201, last.text
    assert after_it.status_code == 201, after_it.text


@pytest.mark.parametrize("correct", ["²", "1" * 5000, "0"])
async def test_csv_correct_cells_that_are_not_option_numbers_are_row_problems(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest, correct: str
) -> None:
    contest = await new_contest()
    csv = f"type,question,option_1,option_2,correct,max_marks\nmcq_single,Q,a,b,{correct},1\n"
    response = await client.post(
        "/api/v1/admin/questions/upload/csv",
        params={"contest_id": contest["id"]},
        files={"file": ("q.csv", csv.encode(), "text/csv")},
        headers=admin_headers,
    )
    assert response.status_code == 422, response.text
    assert "correct" in response.text


async def test_json_uploads_with_unreadable_numbers_are_a_422(
    client: httpx.AsyncClient, admin_headers: dict[str, str], new_contest: NewContest
) -> None:
    contest = await new_contest()
    document = '[{"type": "subjective", "content": {"question": "Q"}, "position": 1%s}]' % (
        "1" * 5000
    )
    response = await client.post(
        "/api/v1/admin/questions/upload/json",
        params={"contest_id": contest["id"]},
        content=document.encode(),
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "unreadable JSON" in response.text


def test_a_blank_name_and_minutes_that_are_not_a_number_are_refused() -> None:
    from api.schemas import ContestCreate, ExtensionRequest

    with pytest.raises(pydantic.ValidationError, match="blank"):
        ContestCreate.model_validate(
            {
                "name": "   ",
                "start_at": "2030-01-01T00:00:00Z",
                "end_at": "2030-01-02T00:00:00Z",
                "duration_seconds": 60,
            }
        )
    for minutes in (True, "5", 5.0):
        with pytest.raises(pydantic.ValidationError):
            ExtensionRequest.model_validate({"minutes": minutes, "reason": "network"})
    assert ExtensionRequest.model_validate({"minutes": 5, "reason": "network"}).minutes == 5
