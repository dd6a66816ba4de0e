"""Every route of the OpenAPI document, called with generated input: no 5xx.

Schemathesis generates valid and invalid requests for each operation of the app's
OpenAPI document and sends them, with an admin's token, to the app in-process (ASGI).
The app is an instance of its own: schemathesis runs it, lifespan included, on its own
event loop, over this session's database and topics, with an embedded ClickHouse for
analytics. Bounded: 25 generated requests per operation, no example database, no
deadline per example; about 20-35 s in all.

The document is read when the module is imported (it depends on no setting), so each
operation is a test of its own; the app that answers comes from a fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans

from api.main import API_PREFIX, create_app
from api.security import issue_access_token
from elevate.settings import Settings
from sinks.clickhouse import ClickHouse
from tests.api.conftest import ADMIN

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    """An embedded ClickHouse in a folder of its own, with the analytics tables."""
    folder: Path = tmp_path_factory.mktemp("clickhouse")
    client = ClickHouse(f"chdb://{folder}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def admin_token(api_settings: Settings, admin_accounts: None) -> str:
    """An access token of the test admin, signed directly (no request needed)."""
    with psycopg.connect(api_settings.postgres_dsn) as conn:
        row = conn.execute("SELECT id FROM admin_users WHERE username = %s", (ADMIN[0],)).fetchone()
    assert row is not None
    return issue_access_token(api_settings, row[0], "admin").token


@pytest.fixture(scope="session")
def schemathesis_app(api_settings: Settings, clickhouse: ClickHouse) -> Iterator[FastAPI]:
    """An app for schemathesis to run; its lifespan ends with the session."""
    app = create_app(api_settings)
    app.state.clickhouse = clickhouse
    yield app
    shutdown_lifespans()


schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())
# The coverage phase (every boundary of every field, ~2,500 requests) takes about a
# minute here; ELEVATE_DEEP_SCHEMATHESIS=1 runs it too.
if not os.environ.get("ELEVATE_DEEP_SCHEMATHESIS"):
    schema.config.phases.update(phases=["examples", "fuzzing"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_route_answers_5xx(
    case: schemathesis.Case, schemathesis_app: FastAPI, admin_token: str
) -> None:
    case.call_and_validate(
        app=schemathesis_app,
        headers={"Authorization": f"Bearer {admin_token}"},
        checks=[not_a_server_error],
    )


def test_every_api_route_is_in_the_run() -> None:
    operations = [result.ok() for result in schema.get_all_operations()]

    assert all(operation.path.startswith(API_PREFIX) for operation in operations)
    assert len(operations) >= 30
