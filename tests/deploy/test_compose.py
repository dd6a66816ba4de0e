"""docker-compose.yml, its Prometheus configuration and the Dockerfile, read statically:
no Docker engine exists here. The compose file is checked against the Compose
specification's schema and for what the roles need."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from elevate.roles import ROLES
from elevate.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"

DATA_SERVICES = ("kafka", "postgres", "clickhouse")
METRICS_PORT = 9100
# ${NAME}, ${NAME:-default}, ${NAME:?message} and friends.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def test_the_file_follows_the_compose_specification(
    compose: dict[str, Any], compose_spec_schema: dict[str, Any]
) -> None:
    validator = jsonschema.Draft202012Validator(compose_spec_schema)
    errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors


def test_every_role_and_the_services_they_need_are_there(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(ROLES) | set(DATA_SERVICES) | {"migrate", "prometheus", "grafana"} <= set(services)
    for role in ROLES:
        assert services[role]["command"] == ["run", role]
    assert services["migrate"]["command"] == ["migrate"]


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and (re.search(r"\d", tag) or tag == "local"), f"{name}: {image}"


def test_the_roles_are_built_from_the_dockerfile_as_one_image(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name]["image"] for name in (*ROLES, "migrate")}
    assert len(images) == 1
    for name in (*ROLES, "migrate"):
        assert services[name]["build"] == ".", name


def test_roles_set_only_variables_the_settings_read(
    services: dict[str, dict[str, Any]], settings_aliases: frozenset[str]
) -> None:
    for name in (*ROLES, "migrate"):
        unknown = set(_environment(services[name])) - settings_aliases
        assert not unknown, f"{name} sets {sorted(unknown)}, which Settings does not read"


def test_roles_are_configured_for_production_with_a_required_secret(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in (*ROLES, "migrate"):
        env = _environment(services[name])
        assert env["ELEVATE_ENV"] == "production"
        secret = VARIABLE.fullmatch(env["SECRET_KEY"])
        assert secret and secret["name"] == "SECRET_KEY" and secret["op"] == ":?", (
            f"{name}: SECRET_KEY must be required with ${{SECRET_KEY:?message}}"
        )
        assert "$" not in secret["arg"], "a $ in the message is read as interpolation"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert "@postgres:5432/" in env["DATABASE_URL"]
        assert "@clickhouse:8123/" in env["CLICKHOUSE_URL"]
    assert _environment(services["ingest"])["INGEST_HOST"] == "0.0.0.0"
    assert _environment(services["api"])["API_HOST"] == "0.0.0.0"


def test_data_services_have_healthchecks_and_volumes(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    named_volumes = set(compose["volumes"])
    for name in (*DATA_SERVICES, "prometheus", "grafana"):
        service = services[name]
        assert service["healthcheck"]["test"], name
        volumes = [v.split(":")[0] for v in service["volumes"]]
        assert named_volumes & set(volumes), f"{name} keeps its data in no named volume"
    streams_volumes = [v.split(":") for v in services["streams"]["volumes"]]
    assert [v[1] for v in streams_volumes if v[0] in named_volumes] == ["/var/lib/elevate"]


def test_roles_wait_for_healthy_services_and_the_migrations(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ROLES:
        depends_on = services[name]["depends_on"]
        for needed in DATA_SERVICES:
            assert depends_on[needed]["condition"] == "service_healthy", f"{name} -> {needed}"
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name, service in services.items():
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in services, f"{name} depends on a missing {needed}"
            assert condition["condition"] in (
                "service_healthy",
                "service_completed_successfully",
            ), f"{name} -> {needed}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{needed} has no healthcheck"


def test_kafka_keeps_its_log_in_its_volume(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    mounts = [v.split(":")[1] for v in kafka["volumes"]]
    assert _environment(kafka)["KAFKA_LOG_DIRS"] in mounts


def test_prometheus_scrapes_every_role_on_the_metrics_port(
    services: dict[str, dict[str, Any]],
) -> None:
    for role in ROLES:
        env = _environment(services[role])
        # The default host, 127.0.0.1, would hide the port from Prometheus.
        assert (env["METRICS_HOST"], env["METRICS_PORT"]) == ("0.0.0.0", str(METRICS_PORT))
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {f"{role}:{METRICS_PORT}" for role in ROLES} <= targets
    mounted = [v.split(":")[0] for v in services["prometheus"]["volumes"]]
    assert "./deploy/prometheus/prometheus.yml" in mounted


def test_grafana_is_provisioned_with_both_datasources_and_the_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    plugins = _environment(grafana)["GF_INSTALL_PLUGINS"]
    assert re.fullmatch(r"grafana-clickhouse-datasource \d+\.\d+\.\d+", plugins), "pin the plugin"
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    for source in mounts:
        if source.startswith("./"):
            assert (PROJECT_ROOT / source).exists(), source
    provisioning = PROJECT_ROOT / "deploy" / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "elevate.yml").read_text())
    types = {d["type"] for d in datasources["datasources"]}
    assert types == {"prometheus", "grafana-clickhouse-datasource"}
    providers = yaml.safe_load((provisioning / "dashboards" / "elevate.yml").read_text())
    paths = {p["options"]["path"] for p in providers["providers"]}
    assert paths == {mounts["./deploy/grafana/dashboards"]}


def test_the_dockerfile_passes_buildkits_checks(
    lint_dockerfile: Callable[[Path], dict[str, Any]], tmp_path: Path
) -> None:
    report = lint_dockerfile(DOCKERFILE)
    assert report == {"error": "", "warnings": []}
    # The check itself finds mistakes.
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM python:3.11 as build\nRUN --mount=type=bnd,target=/x true\n")
    report = lint_dockerfile(broken)
    assert "bnd" in report["error"]
    assert [w["rule"] for w in report["warnings"]] == ["FromAsCasing"]


def test_the_dockerfile_copies_every_package_and_runs_as_a_numeric_user() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(":" in b and not b.endswith(":latest") for b in bases), bases
    copied = {
        line.split()[1] for line in lines if line.startswith("COPY ") and "--from" not in line
    }
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    assert lines[-2:] == ['ENTRYPOINT ["elevate"]', 'CMD ["run", "all"]']
    home = [line for line in lines if "ELEVATE_HOME=" in line]
    assert home and "WORKDIR /var/lib/elevate" in lines


def test_no_port_is_published_twice(services: dict[str, dict[str, Any]]) -> None:
    published = [
        str(port).split(":")[0]
        for service in services.values()
        for port in service.get("ports", [])
    ]
    assert len(published) == len(set(published))
