"""The tools the deployment tests run, built or fetched once into `.elevate/tools/`.

Everything comes from the Go module proxy, the one source of them reachable here:
helm is built from its Go module (`deploy/build-helm.sh`); the Kubernetes API's
OpenAPI documents ship in the `k8s.io/kubernetes` module and the Compose
specification's JSON schema in `github.com/compose-spec/compose-go/v2`; PromQL is
parsed by Prometheus's own parser and the Dockerfile linted by BuildKit's own frontend
(`gotools/`, two small Go programs). A later run finds them in the cache and needs no
network and no Go.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from elevate.settings import PROJECT_ROOT, Settings

TOOLS = Path(os.environ.get("ELEVATE_TOOLS", PROJECT_ROOT / ".elevate" / "tools"))
CHART = PROJECT_ROOT / "helm" / "elevate"
BUILD_HELM = PROJECT_ROOT / "deploy" / "build-helm.sh"
GO_TOOLS = Path(__file__).parent / "gotools"

# The Kubernetes that helm v3.22.0 assumes without a cluster (it is built with
# k8s.io/client-go v0.37); manifests are checked against this release's API.
KUBERNETES_VERSION = "v1.37.2"
COMPOSE_GO_VERSION = "v2.16.2"

# A value the chart's schema accepts for secretKey (32+ characters).
TEST_SECRET_KEY = "deploy-test-secret-" + "0" * 32


def _require_go() -> str:
    go = shutil.which("go")
    if go is None:
        pytest.fail(
            "the deployment tests build helm and fetch the Kubernetes and Compose schemas "
            "with Go from the Go module proxy, and 'go' is not on PATH: install Go 1.24+ "
            f"(or fill {TOOLS} from a machine that has it)",
            pytrace=False,
        )
    return go


def go_module_files(module: str, version: str, folder: str, dest: Path) -> Path:
    """Copy `folder` of a Go module into `dest`, once: fetched with `go mod download`
    (from the module cache when it is there), moved into place only when complete."""
    if dest.is_dir():
        return dest
    go = _require_go()
    with tempfile.TemporaryDirectory() as outside_any_module:
        done = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            cwd=outside_any_module,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode != 0:
        pytest.fail(f"go mod download {module}@{version} failed:\n{done.stdout}{done.stderr}")
    source = Path(json.loads(done.stdout)["Dir"]) / folder
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        for file in source.glob("*.json"):
            shutil.copyfile(file, staging / file.name)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


@dataclass(frozen=True)
class Helm:
    """The helm binary, with its caches and config in a folder of the test session."""

    binary: Path
    home: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, env=env, timeout=120
        )

    def template(
        self, *args: str, secret_key: str | None = TEST_SECRET_KEY
    ) -> list[dict[str, Any]]:
        """The manifests `helm template` renders, parsed; fails the test if it fails."""
        extra = ["--set", f"secretKey={secret_key}"] if secret_key is not None else []
        done = self.run("template", "elevate", str(CHART), "--namespace", "contests", *extra, *args)
        if done.returncode != 0:
            pytest.fail(f"helm template {' '.join(args)} failed:\n{done.stderr}")
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    def template_error(self, *args: str, secret_key: str | None = TEST_SECRET_KEY) -> str:
        """The error of a `helm template` expected to fail."""
        extra = ["--set", f"secretKey={secret_key}"] if secret_key is not None else []
        done = self.run("template", "elevate", str(CHART), *extra, *args)
        assert done.returncode != 0, f"helm template {' '.join(args)} rendered:\n{done.stdout}"
        return done.stderr


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm built from its Go module by deploy/build-helm.sh (a few minutes, once)."""
    if not (TOOLS.is_dir() and any(TOOLS.glob("helm-*/helm"))):
        _require_go()
    done = subprocess.run(
        ["bash", str(BUILD_HELM)],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "ELEVATE_TOOLS": str(TOOLS)},
    )
    if done.returncode != 0:
        pytest.fail(f"deploy/build-helm.sh failed:\n{done.stderr}")
    return Helm(Path(done.stdout.strip().splitlines()[-1]), tmp_path_factory.mktemp("helm-home"))


def _strict(schema: Any) -> Any:
    """Refuse fields a Kubernetes type does not have (what `kubeconform -strict` does):
    an object schema with properties and no additionalProperties gets it set to false."""
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


class KubernetesSchemas:
    """Validates manifests against the OpenAPI v3 documents of one Kubernetes release,
    one document per API group and version (`apis__apps__v1_openapi.json`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    def _validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        if (api_version, kind) not in self._validators:
            self._validators[api_version, kind] = self._load(api_version, kind)
        return self._validators[api_version, kind]

    def _load(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        group, _, version = api_version.rpartition("/")
        name = f"apis__{group}__{version}_openapi.json" if group else f"api__{version}_openapi.json"
        path = self.folder / name
        if not path.is_file():
            raise LookupError(f"no API group/version {api_version} in Kubernetes {self.folder}")
        components = json.loads(path.read_text())["components"]["schemas"]
        for schema_name, schema in components.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, kind):
                    root = {
                        "$ref": f"#/components/schemas/{schema_name}",
                        "components": {"schemas": _strict(components)},
                    }
                    # OpenAPI 3.0 schemas are JSON Schema draft 4 with extensions.
                    return jsonschema.Draft4Validator(root)
        raise LookupError(f"no kind {kind} in {api_version}")

    def errors(self, manifest: dict[str, Any]) -> list[str]:
        """What is wrong with one manifest, as `path: message` lines."""
        validator = self._validator(manifest["apiVersion"], manifest["kind"])
        return [
            f"{error.json_path}: {error.message}"
            for error in sorted(validator.iter_errors(manifest), key=lambda e: e.json_path)
        ]


@pytest.fixture(scope="session")
def kubernetes_schemas() -> KubernetesSchemas:
    folder = go_module_files(
        "k8s.io/kubernetes",
        KUBERNETES_VERSION,
        "api/openapi-spec/v3",
        TOOLS / f"kubernetes-openapi-{KUBERNETES_VERSION}",
    )
    return KubernetesSchemas(folder)


@pytest.fixture(scope="session")
def compose_spec_schema() -> dict[str, Any]:
    """The Compose specification's JSON schema, as `docker compose` validates with."""
    folder = go_module_files(
        "github.com/compose-spec/compose-go/v2",
        COMPOSE_GO_VERSION,
        "schema",
        TOOLS / f"compose-spec-{COMPOSE_GO_VERSION}",
    )
    schema: dict[str, Any] = json.loads((folder / "compose-spec.json").read_text())
    return schema


@pytest.fixture(scope="session")
def settings_aliases() -> frozenset[str]:
    """Every environment variable `elevate.settings.Settings` reads."""
    return frozenset(field.alias for field in Settings.model_fields.values() if field.alias)


def go_tool(name: str) -> Path:
    """A program of gotools/, built once per version of its sources."""
    sources = sorted(GO_TOOLS.glob("go.*")) + sorted(GO_TOOLS.glob("*/*.go"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    binary = TOOLS / f"gotools-{digest}" / name
    if not binary.is_file():
        go = _require_go()
        binary.parent.mkdir(parents=True, exist_ok=True)
        staging = binary.with_name(f".{name}.{os.getpid()}")
        done = subprocess.run(
            [go, "build", "-trimpath", "-o", str(staging), f"./{name}"],
            cwd=GO_TOOLS,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            pytest.fail(f"building tests/deploy/gotools/{name} failed:\n{done.stderr}")
        staging.rename(binary)
    return binary


@pytest.fixture(scope="session")
def parse_promql() -> Callable[[list[str]], list[dict[str, Any]]]:
    """Parse expressions with Prometheus's parser: per expression its error, or the
    series it selects (`selectors`: name and matcher labels) and its `grouping` labels."""
    binary = go_tool("promql")

    def parse(expressions: list[str]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [str(binary)], input=json.dumps(expressions), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        reports: list[dict[str, Any]] = json.loads(done.stdout)
        return reports

    return parse


@pytest.fixture(scope="session")
def lint_dockerfile() -> Callable[[Path], dict[str, Any]]:
    """Lint a Dockerfile with BuildKit's frontend (`docker build --check`), offline:
    {"error": "...", "warnings": [{"rule", "detail", "line"}]}."""
    binary = go_tool("dockerfile")

    def lint(path: Path) -> dict[str, Any]:
        done = subprocess.run([str(binary), str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    return lint
