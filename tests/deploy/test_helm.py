"""The Helm chart, rendered by the real helm and checked against the Kubernetes API's
own schemas, then read for what a deployment of this pipeline needs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from elevate.roles import ROLES
from tests.deploy.conftest import CHART, TEST_SECRET_KEY, Helm, KubernetesSchemas

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
)
HTTP_ROLES = {"ingest": 8001, "api": 8000}
METRICS_PORT = 9100
# Settings the chart sets itself (addresses, ports, secrets, the volume), and those
# only the local launcher or `elevate run all` reads; values.settings offers the rest.
CHART_SETS = {
    "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "CLICKHOUSE_URL", "SECRET_KEY",
    "JUDGE0_AUTH_TOKEN", "INGEST_HOST", "INGEST_PORT", "API_HOST", "API_PORT",
    "METRICS_HOST", "METRICS_PORT", "ELEVATE_HOME", "STREAMS_INSTANCE_ID",
}  # fmt: skip
NOT_IN_A_CLUSTER = {
    "ELEVATE_KAFKA_PORT", "ELEVATE_KAFKA_CONTROLLER_PORT", "ELEVATE_POSTGRES_PORT",
    "ELEVATE_KAFKA_VERSION", "INGEST_WORKERS",
}  # fmt: skip
# Label values: 63 characters at most, alphanumerics with -_. inside.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _values_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return str(path)


# Value sets the chart is rendered with; every manifest of each is schema-checked.
EVERYTHING_SET = """
image: {repository: registry.example.com/elevate, tag: "2024.10.1", pullPolicy: Always}
imagePullSecrets: [{name: registry}]
serviceAccountName: elevate
kafka: {bootstrapServers: "kafka-0.kafka:9092,kafka-1.kafka:9092"}
postgres:
  {host: pg.db, port: 6432, database: contests, user: app, password: "p@ss:w/rd?", sslmode: require}
clickhouse:
  {scheme: https, host: ch.db, port: 8443, database: analytics, user: app, password: "c#h&"}
settings:
  ELEVATE_ENV: production
  LOG_FORMAT: json
  TOPIC_PREFIX: prod.
  GRACE_SECONDS: 45
  MAX_BODY_BYTES: 1048576
  MAX_ANSWER_BYTES: 131072
  PRODUCER_LINGER_MS: 10
  PRODUCER_COMPRESSION: zstd
  SINK_BATCH_SIZE: 1000
  SINK_FLUSH_SECONDS: 0.25
  ADMIN_TOKEN_MINUTES: 15
  HEARTBEAT_INTERVAL_SECONDS: 2.5
  RATE_LIMIT_PER_IP: 1000
  JUDGE0_URL: http://judge0.exec:2358
  JUDGE0_TIMEOUT_SECONDS: 120
judge0AuthToken: judge0-token
metrics: {port: 9200, annotations: true}
podAnnotations: {team: assessments}
podLabels: {tier: backend}
nodeSelector: {pool: contests}
tolerations: [{key: dedicated, operator: Equal, value: contests, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app.kubernetes.io/name: elevate}}
roles:
  ingest:
    service: {type: LoadBalancer, port: 80}
    autoscaling:
      {enabled: true, minReplicas: 3, maxReplicas: 30, targetCPUUtilizationPercentage: 60}
    pdb: {maxUnavailable: 25%}
  streams:
    replicas: 6
    persistence: {size: 20Gi, storageClassName: fast-ssd, accessModes: [ReadWriteOncePod]}
"""
VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "existing secret, no autoscaling, no migrations": [
        "--set",
        "existingSecret=elevate-secrets",
        "--set",
        "roles.ingest.autoscaling.enabled=false",
        "--set",
        "roles.api.autoscaling.enabled=false",
        "--set",
        "migrations.enabled=false",
        "--set",
        "metrics.annotations=false",
    ],
    "everything set": ["--values", "EVERYTHING_SET"],
}


def _render(helm: Helm, tmp_path: Path, args: list[str]) -> list[dict[str, Any]]:
    args = [_values_file(tmp_path, EVERYTHING_SET) if a == "EVERYTHING_SET" else a for a in args]
    return helm.template(*args)


@pytest.fixture(scope="module")
def manifests(helm: Helm) -> list[dict[str, Any]]:
    """The chart with its default values and a secret key."""
    return helm.template()


def _one(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _workloads(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] in WORKLOAD_KINDS]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = workload["spec"]["template"]
    return pod


def _role(workload: dict[str, Any]) -> str:
    role: str = workload["metadata"]["labels"]["app.kubernetes.io/component"]
    return role


def _env_names(container: dict[str, Any], manifests: list[dict[str, Any]]) -> set[str]:
    """The variables a container gets: its env and the keys of what envFrom names."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                found = [
                    m
                    for m in manifests
                    if m["kind"] == kind and m["metadata"]["name"] == source[ref]["name"]
                ]
                assert found, f"{container['name']}: envFrom names a missing {kind}"
                names |= set(found[0].get("data", {}))
    return names


def test_chart_passes_helm_lint_strict(helm: Helm) -> None:
    done = helm.run("lint", str(CHART), "--strict", "--set", f"secretKey={TEST_SECRET_KEY}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_every_manifest_matches_the_kubernetes_api_schema(
    helm: Helm, kubernetes_schemas: KubernetesSchemas, tmp_path: Path, value_set: str
) -> None:
    manifests = _render(helm, tmp_path, VALUE_SETS[value_set])
    problems = {
        f"{m['kind']} {m['metadata']['name']}": errors
        for m in manifests
        if (errors := kubernetes_schemas.errors(m))
    }
    assert not problems
    for m in manifests:
        name = m["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), f"{m['kind']} name {name!r}"
        for key, value in m["metadata"].get("labels", {}).items():
            assert len(value) <= 63 and LABEL_VALUE.match(value), f"{name}: label {key}={value!r}"
    kinds = sorted({m["kind"] for m in manifests})
    assert {"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "StatefulSet"} <= set(
        kinds
    )


@pytest.mark.parametrize(
    ("args", "secret_key", "complaint"),
    [
        pytest.param([], None, "/secretKey", id="missing secretKey"),
        pytest.param([], "too-short", "/secretKey", id="short secretKey"),
        pytest.param(
            ["--set", "roles.ingest.replicas=-1"],
            TEST_SECRET_KEY,
            "/roles/ingest/replicas",
            id="negative ingest replicas",
        ),
        pytest.param(
            ["--set", "roles.streams.replicas=-2"],
            TEST_SECRET_KEY,
            "/roles/streams/replicas",
            id="negative streams replicas",
        ),
        pytest.param(
            ["--set", "roles.ingset.replicas=2"], TEST_SECRET_KEY, "ingset", id="misspelt role"
        ),
        pytest.param(
            ["--set", "settings.GRACE_SECOND=5"],
            TEST_SECRET_KEY,
            "GRACE_SECOND",
            id="unknown setting",
        ),
        pytest.param(
            ["--set", "settings.PRODUCER_COMPRESSION=brotli"],
            TEST_SECRET_KEY,
            "/settings/PRODUCER_COMPRESSION",
            id="unknown compression",
        ),
        pytest.param(
            ["--set", "roles.api.resources.limits=null"],
            TEST_SECRET_KEY,
            "/roles/api/resources",
            id="no limits",
        ),
        pytest.param(
            ["--set", "kafka.bootstrapServers=kafka"],
            TEST_SECRET_KEY,
            "/kafka/bootstrapServers",
            id="bootstrap server without port",
        ),
        pytest.param(
            ["--set", "roles.api.autoscaling.minReplicas=8"],
            TEST_SECRET_KEY,
            "minReplicas (8) is above maxReplicas (6)",
            id="autoscaling min above max",
        ),
    ],
)
def test_bad_values_are_refused(
    helm: Helm, args: list[str], secret_key: str | None, complaint: str
) -> None:
    assert complaint in helm.template_error(*args, secret_key=secret_key)


def test_a_secret_key_is_not_needed_with_an_existing_secret(helm: Helm) -> None:
    manifests = helm.template("--set", "existingSecret=elevate-secrets", secret_key=None)
    assert not [m for m in manifests if m["kind"] == "Secret"]
    for workload in _workloads(manifests):
        refs = [
            s["secretRef"]["name"]
            for s in _pod(workload)["spec"]["containers"][0]["envFrom"]
            if "secretRef" in s
        ]
        assert refs == ["elevate-secrets"], workload["metadata"]["name"]


def test_every_role_runs_as_one_workload(manifests: list[dict[str, Any]]) -> None:
    kinds = {_role(w): w["kind"] for w in _workloads(manifests)}
    assert kinds == {
        "ingest": "Deployment",
        "api": "Deployment",
        "sink-postgres": "Deployment",
        "sink-clickhouse": "Deployment",
        "streams": "StatefulSet",
        "migrations": "Job",
    }
    assert set(kinds) - {"migrations"} == set(ROLES)
    for workload in _workloads(manifests):
        args = _pod(workload)["spec"]["containers"][0]["args"]
        role = _role(workload)
        assert args == (["migrate"] if role == "migrations" else ["run", role])


def test_every_workload_has_probes_resources_and_the_standard_labels(
    manifests: list[dict[str, Any]],
) -> None:
    for workload in _workloads(manifests):
        name = workload["metadata"]["name"]
        pod = _pod(workload)
        for labels in (workload["metadata"]["labels"], pod["metadata"]["labels"]):
            assert set(STANDARD_LABELS) <= set(labels), name
            assert labels["app.kubernetes.io/part-of"] == "elevate"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
        for container in pod["spec"]["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), f"{name}: {bound}"
            if workload["kind"] == "Job":
                continue
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["path"] in ("/healthz", "/readyz"), name
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_probes_use_the_main_port_of_http_roles_and_the_metrics_port_of_the_others(
    manifests: list[dict[str, Any]],
) -> None:
    for workload in _workloads(manifests):
        role = _role(workload)
        if role == "migrations":
            continue
        container = _pod(workload)["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == METRICS_PORT
        probe_port = ports[container["readinessProbe"]["httpGet"]["port"]]
        assert probe_port == HTTP_ROLES.get(role, METRICS_PORT), role
        assert ports[container["livenessProbe"]["httpGet"]["port"]] == probe_port


def test_every_pod_is_scraped_on_the_metrics_port(manifests: list[dict[str, Any]]) -> None:
    for workload in _workloads(manifests):
        if workload["kind"] == "Job":
            continue
        annotations = _pod(workload)["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(METRICS_PORT)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_ingest_and_api_autoscale(manifests: list[dict[str, Any]]) -> None:
    hpas = [m for m in manifests if m["kind"] == "HorizontalPodAutoscaler"]
    assert {h["apiVersion"] for h in hpas} == {"autoscaling/v2"}
    targets = {h["spec"]["scaleTargetRef"]["name"]: h for h in hpas}
    assert set(targets) == {"elevate-ingest", "elevate-api"}
    for name, hpa in targets.items():
        deployment = _one(manifests, "Deployment", name)
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # The autoscaler owns the replica count; a fixed one would fight it on upgrade.
        assert "replicas" not in deployment["spec"]
        cpu = _pod(deployment)["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        assert cpu, "CPU utilisation needs a CPU request"


def test_streams_is_a_statefulset_with_a_volume_at_elevate_home(
    manifests: list[dict[str, Any]],
) -> None:
    streams = _one(manifests, "StatefulSet", "elevate-streams")
    claims = streams["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert claims[0]["spec"]["resources"]["requests"]["storage"]
    container = _pod(streams)["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ELEVATE_HOME"] == mounts["data"]
    [instance] = [e for e in container["env"] if e["name"] == "STREAMS_INSTANCE_ID"]
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert container["workingDir"] == mounts["data"], "Faust's data folder is relative to it"
    headless = _one(manifests, "Service", streams["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= _pod(streams)["metadata"]["labels"].items()


def test_migrations_run_as_a_hook_before_install_and_upgrade(
    manifests: list[dict[str, Any]],
) -> None:
    job = _one(manifests, "Job", "elevate-migrations")
    hooks = {
        (m["kind"], m["metadata"]["name"]): m["metadata"].get("annotations", {})
        for m in manifests
        if "helm.sh/hook" in m["metadata"].get("annotations", {})
    }
    assert hooks[("Job", "elevate-migrations")]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # Pre-install hooks run before the release's resources exist: whatever the Job
    # reads must be a hook too, with a lower weight.
    job_weight = int(hooks[("Job", "elevate-migrations")]["helm.sh/hook-weight"])
    container = _pod(job)["spec"]["containers"][0]
    for source in container["envFrom"]:
        kind, ref = (
            ("ConfigMap", "configMapRef") if "configMapRef" in source else ("Secret", "secretRef")
        )
        annotations = hooks[(kind, source[ref]["name"])]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert int(annotations["helm.sh/hook-weight"]) < job_weight
    assert _pod(job)["spec"]["restartPolicy"] == "Never"
    assert "serviceAccountName" not in _pod(job)["spec"], "no chart ServiceAccount exists yet"


def test_every_variable_is_a_setting_the_application_reads(
    helm: Helm, tmp_path: Path, settings_aliases: frozenset[str]
) -> None:
    manifests = _render(helm, tmp_path, VALUE_SETS["everything set"])
    for workload in _workloads(manifests):
        for container in _pod(workload)["spec"]["containers"]:
            unknown = _env_names(container, manifests) - settings_aliases
            assert not unknown, f"{workload['metadata']['name']} sets {sorted(unknown)}"
    config = _one(manifests, "ConfigMap", "elevate")["data"]
    assert config["MAX_BODY_BYTES"] == "1048576", "a whole number must not print as 1.048576e+06"
    assert config["SINK_FLUSH_SECONDS"] == "0.25"
    assert config["TOPIC_PREFIX"] == "prod."


def test_values_offer_every_setting_the_chart_does_not_set(
    settings_aliases: frozenset[str],
) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    offered = set(schema["properties"]["settings"]["properties"])
    assert offered <= settings_aliases, (
        f"not settings (any more): {sorted(offered - settings_aliases)}"
    )
    missing = settings_aliases - offered - CHART_SETS - NOT_IN_A_CLUSTER
    assert not missing, (
        f"add {sorted(missing)} to settings in helm/elevate/values.schema.json "
        "(or to CHART_SETS here when the chart sets it)"
    )
    assert settings_aliases >= CHART_SETS | NOT_IN_A_CLUSTER, "a setting was renamed"


def test_the_metrics_port_is_one_value(helm: Helm, tmp_path: Path) -> None:
    manifests = _render(helm, tmp_path, VALUE_SETS["everything set"])
    config = _one(manifests, "ConfigMap", "elevate")["data"]
    assert (config["METRICS_HOST"], config["METRICS_PORT"]) == ("0.0.0.0", "9200")
    for workload in _workloads(manifests):
        if workload["kind"] == "Job":
            continue
        pod = _pod(workload)
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9200"
        container = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 9200
        if _role(workload) not in HTTP_ROLES:
            assert container["readinessProbe"]["httpGet"]["port"] == "metrics"


def test_service_urls_carry_escaped_passwords(helm: Helm, tmp_path: Path) -> None:
    manifests = _render(helm, tmp_path, VALUE_SETS["everything set"])
    secret = {
        key: base64.b64decode(value).decode()
        for key, value in _one(manifests, "Secret", "elevate")["data"].items()
    }
    assert secret["SECRET_KEY"] == TEST_SECRET_KEY
    assert secret["JUDGE0_AUTH_TOKEN"] == "judge0-token"
    database = urlsplit(secret["DATABASE_URL"])
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "pg.db", 6432)
    assert (database.username, unquote(database.password or "")) == ("app", "p@ss:w/rd?")
    assert (database.path, database.query) == ("/contests", "sslmode=require")
    clickhouse = urlsplit(secret["CLICKHOUSE_URL"])
    assert (clickhouse.scheme, clickhouse.hostname, clickhouse.port) == ("https", "ch.db", 8443)
    assert (clickhouse.username, unquote(clickhouse.password or "")) == ("app", "c#h&")
    assert clickhouse.path == "/analytics"


def test_pods_run_as_non_root_on_a_read_only_root(manifests: list[dict[str, Any]]) -> None:
    for workload in _workloads(manifests):
        name = workload["metadata"]["name"]
        spec = _pod(workload)["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{name}: /tmp must be writable"


def test_services_and_budgets_select_their_role(manifests: list[dict[str, Any]]) -> None:
    pods = {_role(w): _pod(w) for w in _workloads(manifests)}
    services = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Service"}
    assert set(services) == {"elevate-ingest", "elevate-api", "elevate-streams"}
    for service in services.values():
        selected = [
            role
            for role, pod in pods.items()
            if service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, service["metadata"]["name"]
        port_names = {p["name"] for p in pods[selected[0]]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    budgets = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
    covered = {
        role
        for budget in budgets
        for role, pod in pods.items()
        if budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    }
    assert covered == set(ROLES)
