"""Sign-in, bearer tokens and roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
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


async def test_grader_reads_but_may_not_write(
    client: httpx.AsyncClient, grader_headers: dict[str, str], contest_body: dict[str, object]
) -> None:
    listed = await client.get(CONTESTS, headers=grader_headers)
    created = await client.post(CONTESTS, json=contest_body, headers=grader_headers)

    assert listed.status_code == 200
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
            .replace("{attempt_id}", str(uuid.uuid4())),
        )
        for path, operations in paths.items()
        if path.startswith("/api/v1/admin/")
        for method in operations
    ]

    assert len(admin_routes) >= 12
    for method, path in admin_routes:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
