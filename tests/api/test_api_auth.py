"""Sign-in, bearer tokens and roles."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from api.admins import create_admin
from api.security import issue_access_token
from elevate.settings import Settings

pytestmark = pytest.mark.integration

ADMIN = ("test-admin", "admin-password-1")
CONTESTS = "/api/v1/admin/contests/"


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/auth/token"])
async def test_token_for_right_credentials(
    client: httpx.AsyncClient, api_settings: Settings, path: str
) -> None:
    response = await client.post(path, json={"username": ADMIN[0], "password": ADMIN[1]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == api_settings.admin_token_minutes * 60
    claims = jwt.decode(
        body["access_token"], api_settings.secret_key.get_secret_value(), algorithms=["HS256"]
    )
    assert claims["typ"] == "admin_access"
    assert claims["role"] == "admin"


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": ADMIN[0], "password": "wrong-password"},
        {"username": "nobody-by-this-name", "password": ADMIN[1]},
    ],
)
async def test_wrong_credentials_are_401(
    client: httpx.AsyncClient, credentials: dict[str, str]
) -> None:
    response = await client.post("/api/v1/auth/token/", json=credentials)

    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_token_request_without_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/token/", json={"username": ADMIN[0]})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]


def _forged(settings: Settings, **claims: object) -> str:
    now = datetime.now(UTC)
    base = {
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "typ": "admin_access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return jwt.encode({**base, **claims}, settings.secret_key.get_secret_value(), "HS256")


async def test_admin_routes_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(CONTESTS)

    assert response.status_code == 401
    assert "missing bearer token" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        ("Bearer not-a-jwt", "token invalid"),
        ("Basic dXNlcjpwYXNz", "missing bearer token"),
    ],
)
async def test_malformed_tokens_are_401(
    client: httpx.AsyncClient, authorization: str, detail: str
) -> None:
    response = await client.get(CONTESTS, headers={"Authorization": authorization})

    assert response.status_code == 401
    assert detail in response.json()["detail"]


async def test_expired_token_is_401(
    client: httpx.AsyncClient, api_settings: Settings, admin_headers: dict[str, str]
) -> None:
    admin_id = jwt.decode(
        admin_headers["Authorization"].removeprefix("Bearer "),
        options={"verify_signature": False},
    )["sub"]
    issued = issue_access_token(
        api_settings,
        uuid.UUID(admin_id),
        "admin",
        now=datetime.now(UTC) - timedelta(minutes=api_settings.admin_token_minutes + 1),
    )

    response = await client.get(CONTESTS, headers={"Authorization": f"Bearer {issued.token}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "token expired"}


async def test_token_signed_with_another_key_is_401(client: httpx.AsyncClient) -> None:
    other = Settings(SECRET_KEY="some-other-secret-of-enough-length-0123456789")
    token = _forged(other)

    response = await client.get(CONTESTS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "token invalid"}


async def test_other_token_types_are_401(client: httpx.AsyncClient, api_settings: Settings) -> None:
    token = _forged(api_settings, typ="attempt")

    response = await client.get(CONTESTS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "not an admin access token"}


async def test_token_of_a_deleted_user_is_401(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    token = _forged(api_settings, sub=str(uuid.uuid4()))

    response = await client.get(CONTESTS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert "no longer exists" in response.json()["detail"]


async def test_grader_may_not_read_or_write_contests(
    client: httpx.AsyncClient, grader_headers: dict[str, str], contest_body: dict[str, object]
) -> None:
    listed = await client.get(CONTESTS, headers=grader_headers)
    created = await client.post(CONTESTS, json=contest_body, headers=grader_headers)

    assert listed.status_code == 403
    assert created.status_code == 403
    assert created.json() == {"detail": "this needs the admin role; test-grader is a grader"}


async def test_create_admin_again_resets_password_and_role(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    create_admin(api_settings.postgres_dsn, "rotating-admin", "first-password", "grader")
    create_admin(api_settings.postgres_dsn, "rotating-admin", "second-password", "admin")

    old = await client.post(
        "/api/v1/auth/token/", json={"username": "rotating-admin", "password": "first-password"}
    )
    new = await client.post(
        "/api/v1/auth/token/", json={"username": "rotating-admin", "password": "second-password"}
    )

    assert old.status_code == 401
    assert new.status_code == 200
    role = jwt.decode(new.json()["access_token"], options={"verify_signature": False})["role"]
    assert role == "admin"


def test_create_admin_refuses_unknown_roles(api_settings: Settings) -> None:
    with pytest.raises(ValueError, match="role must be one of admin, grader"):
        create_admin(api_settings.postgres_dsn, "someone", "password", "superuser")


async def test_every_admin_route_needs_a_token(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    admin_routes = [
        (
            method.upper(),
            path.replace("{contest_id}", str(uuid.uuid4()))
            .replace("{question_id}", str(uuid.uuid4()))
            .replace("{attempt_id}", str(uuid.uuid4()))
            .replace("{participant_id}", str(uuid.uuid4()))
            .replace("{response_id}", str(uuid.uuid4())),
        )
        for path, operations in paths.items()
        if path.startswith("/api/v1/admin/")
        for method in operations
    ]

    assert len(admin_routes) >= 25
    for method, path in admin_routes:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)


REFRESH = "/api/v1/auth/refresh"


async def _sign_in(client: httpx.AsyncClient, username: str, password: str) -> dict[str, object]:
    response = await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_refresh_rotates_and_the_new_access_token_works(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    signed_in = await _sign_in(client, *ADMIN)

    refreshed = await client.post(REFRESH, json={"refresh_token": signed_in["refresh_token"]})

    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["refresh_token"] != signed_in["refresh_token"]
    assert body["access_token"] != signed_in["access_token"]
    assert body["refresh_expires_in"] == api_settings.admin_refresh_token_hours * 3600
    listed = await client.get(CONTESTS, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert listed.status_code == 200
    # The successor works once too.
    again = await client.post(f"{REFRESH}/", json={"refresh_token": body["refresh_token"]})
    assert again.status_code == 200


async def test_a_reused_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any]
) -> None:
    first = await _sign_in(client, *ADMIN)
    other_sign_in = await _sign_in(client, *ADMIN)
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    third = (await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})).json()

    reused = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    latest = await client.post(REFRESH, json={"refresh_token": third["refresh_token"]})
    unrelated = await client.post(REFRESH, json={"refresh_token": other_sign_in["refresh_token"]})

    assert reused.status_code == 401
    assert reused.json() == {
        "detail": "refresh token already used; every token of this sign-in is revoked"
    }
    assert reused.headers["www-authenticate"] == "Bearer"
    assert latest.status_code == 401
    assert latest.json() == {"detail": "refresh token revoked; sign in again"}
    assert unrelated.status_code == 200
    cursor = await db.execute(
        "SELECT count(*), count(revoked_at), count(DISTINCT family_id) FROM refresh_tokens"
        " WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %s)",
        (hashlib.sha256(str(first["refresh_token"]).encode()).hexdigest(),),
    )
    assert await cursor.fetchone() == (3, 3, 1)


async def test_refresh_tokens_are_stored_hashed(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any]
) -> None:
    token = str((await _sign_in(client, *ADMIN))["refresh_token"])

    cursor = await db.execute(
        "SELECT token_hash, parent_id, used_at, revoked_at, expires_at > now()"
        " FROM refresh_tokens WHERE token_hash = %s",
        (hashlib.sha256(token.encode()).hexdigest(),),
    )
    row = await cursor.fetchone()
    cursor = await db.execute("SELECT count(*) FROM refresh_tokens WHERE token_hash = %s", (token,))

    assert row is not None
    assert row[1:] == (None, None, None, True)
    assert await cursor.fetchone() == (0,)


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("not-a-token-we-issued", "refresh token invalid"),
        ("", None),
    ],
)
async def test_unknown_refresh_tokens_are_401(
    client: httpx.AsyncClient, token: str, detail: str | None
) -> None:
    response = await client.post(REFRESH, json={"refresh_token": token})

    if detail is None:
        assert response.status_code == 422
    else:
        assert response.status_code == 401
        assert response.json() == {"detail": detail}


async def test_expired_refresh_token_is_401(
    client: httpx.AsyncClient, db: psycopg.AsyncConnection[Any]
) -> None:
    token = str((await _sign_in(client, *ADMIN))["refresh_token"])
    await db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
        (hashlib.sha256(token.encode()).hexdigest(),),
    )

    response = await client.post(REFRESH, json={"refresh_token": token})

    assert response.status_code == 401
    assert response.json() == {"detail": "refresh token expired; sign in again"}


async def test_revoke_signs_out(client: httpx.AsyncClient) -> None:
    token = (await _sign_in(client, *ADMIN))["refresh_token"]

    revoked = await client.post("/api/v1/auth/revoke", json={"refresh_token": token})
    unknown = await client.post("/api/v1/auth/revoke/", json={"refresh_token": "whatever"})
    refreshed = await client.post(REFRESH, json={"refresh_token": token})

    assert (revoked.status_code, unknown.status_code) == (204, 204)
    assert refreshed.status_code == 401


async def test_a_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    token = (await _sign_in(client, *ADMIN))["refresh_token"]

    response = await client.get(CONTESTS, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


async def test_refresh_reads_the_current_role(
    client: httpx.AsyncClient, api_settings: Settings
) -> None:
    create_admin(api_settings.postgres_dsn, "demoted-admin", "password-1", "admin")
    token = (await _sign_in(client, "demoted-admin", "password-1"))["refresh_token"]
    create_admin(api_settings.postgres_dsn, "demoted-admin", "password-1", "grader")

    refreshed = await client.post(REFRESH, json={"refresh_token": token})

    role = jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})["role"]
    assert role == "grader"


# The only admin routes a grader may use.
GRADER_ROUTES = {
    ("GET", "/api/v1/admin/grading/pending/"),
    ("POST", "/api/v1/admin/grading/responses/{response_id}/"),
}


async def test_graders_may_only_grade(
    client: httpx.AsyncClient, grader_headers: dict[str, str]
) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    routes = [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/v1/admin/")
        for method in operations
    ]

    statuses = {}
    for method, path in routes:
        concrete = path
        for name in ("contest_id", "question_id", "attempt_id", "participant_id", "response_id"):
            concrete = concrete.replace(f"{{{name}}}", str(uuid.uuid4()))
        response = await client.request(method, concrete, json={}, headers=grader_headers)
        statuses[(method, path)] = response.status_code

    assert set(statuses) >= GRADER_ROUTES
    for route, code in statuses.items():
        if route in GRADER_ROUTES:
            assert code != 403, route
        else:
            assert code == 403, route
    assert statuses[("GET", "/api/v1/admin/grading/pending/")] == 200
