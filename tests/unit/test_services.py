"""Unit tests of the pure parts of elevate.services: rendering, command lines, parsing.

Nothing here starts a process or opens a port on a fixed number.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
import shutil
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from elevate.services import kafka, postgres, prerequisites
from elevate.services.prerequisites import ServiceError
from elevate.settings import Settings

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "ELEVATE_HOME": str(tmp_path / "home"),
            "ELEVATE_KAFKA_PORT": 29092,
            "ELEVATE_KAFKA_CONTROLLER_PORT": 29093,
            "ELEVATE_POSTGRES_PORT": 45432,
            "ELEVATE_KAFKA_VERSION": "3.9.1",
            # Services given by URL in the environment must not leak into these tests.
            "KAFKA_BOOTSTRAP_SERVERS": "",
            "DATABASE_URL": "",
            "CLICKHOUSE_URL": "",
        }
    )


def _props(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


# --------------------------------------------------------------------------- kafka


def test_pom_declares_broker_and_log_binding() -> None:
    root = ET.fromstring(kafka.render_pom("3.9.1"))
    deps = {
        (
            d.findtext("m:groupId", namespaces=POM_NS),
            d.findtext("m:artifactId", namespaces=POM_NS),
        ): (d.findtext("m:version", namespaces=POM_NS))
        for d in root.iterfind("m:dependencies/m:dependency", POM_NS)
    }
    assert deps[("org.apache.kafka", "kafka_2.13")] == "3.9.1"
    assert deps[("org.slf4j", "slf4j-reload4j")] == kafka.SLF4J_VERSION
    assert deps[("ch.qos.reload4j", "reload4j")] == kafka.RELOAD4J_VERSION
    plugin = root.find("m:build/m:pluginManagement/m:plugins/m:plugin", POM_NS)
    assert plugin is not None
    assert plugin.findtext("m:artifactId", namespaces=POM_NS) == "maven-dependency-plugin"


def test_server_properties(settings: Settings) -> None:
    paths = kafka.KafkaPaths.of(settings)
    props = _props(kafka.render_server_properties(settings, paths))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(paths.data)
    assert Path(props["log.dirs"]).is_absolute()
    assert props["num.partitions"] == "6"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"  # topics come from the registry
    assert int(props["log.retention.hours"]) > 0


def test_log4j_writes_to_server_log(settings: Settings) -> None:
    paths = kafka.KafkaPaths.of(settings)
    props = _props(kafka.render_log4j(paths))
    assert props["log4j.appender.file.File"] == str(paths.server_log)
    assert props["log4j.rootLogger"].startswith("INFO")


def test_paths_follow_settings(settings: Settings) -> None:
    paths = kafka.KafkaPaths.of(settings)
    assert paths.libs == settings.home.resolve() / "kafka" / "libs-3.9.1"
    assert paths.pid.name == "kafka.pid"
    assert paths.log.name == "kafka.log"


def test_cluster_id_is_kafka_uuid_format() -> None:
    ids = {kafka.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_broker_and_format_commands(settings: Settings) -> None:
    paths = kafka.KafkaPaths.of(settings)
    broker = kafka.broker_command(paths, "/usr/bin/java")
    assert broker[0] == "/usr/bin/java"
    assert "-Xmx1g" in broker and "-Xms256m" in broker
    assert broker[broker.index("-cp") + 1] == f"{paths.libs}/*"
    assert f"-Dlog4j.configuration=file:{paths.log4j}" in broker
    assert broker[-2:] == ["kafka.Kafka", str(paths.config)]

    fmt = kafka.format_command(paths, "abc", "java")
    i = fmt.index("kafka.tools.StorageTool")
    assert fmt[i + 1 :] == ["format", "-t", "abc", "-c", str(paths.config), "--ignore-formatted"]


def test_fetch_command(settings: Settings, tmp_path: Path) -> None:
    paths = kafka.KafkaPaths.of(settings)
    cmd = kafka.fetch_command(paths, tmp_path / "out", "mvn")
    assert cmd[0] == "mvn" and "-q" in cmd and "-B" in cmd
    assert cmd[cmd.index("-f") + 1] == str(paths.fetch_dir / "pom.xml")
    assert "dependency:copy-dependencies" in cmd
    assert f"-DoutputDirectory={tmp_path / 'out'}" in cmd


def test_libs_complete(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    assert not kafka.libs_complete(libs)
    libs.mkdir()
    (libs / "a.jar").write_bytes(b"x")
    assert not kafka.libs_complete(libs)  # no marker: an interrupted fetch
    (libs / kafka.MARKER).write_text("a.jar\nb.jar\n")
    assert not kafka.libs_complete(libs)  # a listed jar is missing
    (libs / "b.jar").write_bytes(b"x")
    assert kafka.libs_complete(libs)
    (libs / kafka.MARKER).write_text("\n")
    assert not kafka.libs_complete(libs)


def test_running_pid_removes_stale_pid_file(settings: Settings) -> None:
    paths = kafka.KafkaPaths.of(settings)
    paths.root.mkdir(parents=True)
    assert kafka.running_pid(paths) is None
    # Our own pid is alive but is not a broker: the file is stale for our purpose.
    paths.pid.write_text(f"{os.getpid()}\n")
    assert kafka.running_pid(paths) is None
    assert not paths.pid.exists()
    paths.pid.write_text("not a pid")
    assert kafka.running_pid(paths) is None


def test_external_kafka_is_not_started(settings: Settings) -> None:
    external = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{_free_port()}"})
    with pytest.raises(ServiceError, match="external cluster"):
        kafka.up(external)
    assert kafka.status(external).startswith("external ")
    assert not kafka.KafkaPaths.of(external).root.exists()


# --------------------------------------------------------------------------- postgres


def test_postgres_commands(settings: Settings) -> None:
    paths = postgres.PostgresPaths.of(settings)
    init = postgres.initdb_args(paths)
    assert init[:4] == ["-D", str(paths.data), "-U", "elevate"]
    assert "--auth=trust" in init
    assert init[init.index("-E") + 1] == "UTF8"

    start = postgres.start_args(paths)
    assert start[-1] == "start" and "-w" in start
    assert start[start.index("-l") + 1] == str(paths.log)
    opts = shlex.split(start[start.index("-o") + 1])
    assert opts[opts.index("-p") + 1] == "45432"
    assert opts[opts.index("-k") + 1] == str(paths.sockets)
    assert "listen_addresses=127.0.0.1" in opts
    assert "max_connections=200" in opts
    assert not any(o.startswith("fsync") for o in opts)


def test_server_options_quote_odd_paths(tmp_path: Path) -> None:
    paths = postgres.PostgresPaths(root=tmp_path / "with space", port=5555)
    opts = shlex.split(postgres.server_options(paths))
    assert opts[opts.index("-k") + 1] == str(paths.sockets)


def test_socket_dir_falls_back_when_path_too_long(tmp_path: Path) -> None:
    long_root = tmp_path / ("x" * 120)
    paths = postgres.PostgresPaths(root=long_root, port=5555)
    assert len(f"{paths.sockets}/.s.PGSQL.5555") <= postgres.MAX_SOCKET_PATH
    short = postgres.PostgresPaths(root=Path("/srv/e/postgres"), port=5555)
    assert short.sockets == Path("/srv/e/postgres/run")


def test_postmaster_pid(tmp_path: Path) -> None:
    assert postgres.postmaster_pid(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("4242\n/data\n1700000000\n55432\n/run\n")
    assert postgres.postmaster_pid(tmp_path) == (4242, 55432)
    (tmp_path / "postmaster.pid").write_text("garbage\n")
    assert postgres.postmaster_pid(tmp_path) is None


def test_postgres_dsn_of_settings(settings: Settings) -> None:
    assert settings.postgres_dsn == "postgresql://elevate@127.0.0.1:45432/elevate"
    assert postgres.admin_dsn(45432) == "postgresql://elevate@127.0.0.1:45432/postgres"


# --------------------------------------------------------------------------- prerequisites


def test_requirements_skip_services_given_by_url(settings: Settings) -> None:
    local = {r.tool for r in prerequisites.requirements(settings)}
    assert local == {"java", "mvn", "initdb/pg_ctl", "bwrap", "g++", "cc", "javac"}
    external = settings.model_copy(
        update={
            "kafka_bootstrap_servers": "k:9092",
            "database_url": "postgresql://x/y",
            "judge0_url": "http://judge0:2358",
        }
    )
    assert {r.tool for r in prerequisites.requirements(external)} == {"bwrap"}


def test_apt_install_command() -> None:
    assert prerequisites.apt_install_command(["maven", "bubblewrap"]) == [
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "maven",
        "bubblewrap",
    ]


def test_non_root_missing_tools_names_the_fix(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prerequisites, "is_root", lambda: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(prerequisites, "postgres_bindir", lambda: None)
    with pytest.raises(ServiceError) as err:
        prerequisites.ensure_prerequisites(settings)
    message = str(err.value)
    for word in ("java", "mvn", "initdb", "bwrap", "openjdk-17-jre-headless", "bubblewrap"):
        assert word in message
    assert "apt-get install -y --no-install-recommends" in message


# --------------------------------------------------------------------------- helpers


def test_redact_hides_passwords() -> None:
    assert prerequisites.redact("postgresql://u:pw@h:5432/d") == "postgresql://u:***@h:5432/d"
    assert prerequisites.redact("postgresql://u@h/d") == "postgresql://u@h/d"


def test_host_port() -> None:
    assert prerequisites.host_port("127.0.0.1:19092", 9092) == ("127.0.0.1", 19092)
    assert prerequisites.host_port("broker", 9092) == ("broker", 9092)
    assert prerequisites.host_port("http://u:p@ch:8123/db", 9000) == ("ch", 8123)


def test_tail_and_with_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert prerequisites.with_tail("msg", log) == "msg"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert prerequisites.tail(log, lines=2) == "line 98\nline 99"
    since = len("line 0\n")
    assert prerequisites.tail(log, lines=1000, since=since).splitlines()[0] == "line 1"
    text = prerequisites.with_tail("msg", log)
    assert text.startswith("msg\n") and str(log) in text and "    line 99" in text


def test_pid_alive() -> None:
    assert prerequisites.pid_alive(os.getpid())
    assert not prerequisites.pid_alive(2**22 + 12345)


def test_run_coroutine_inside_running_loop() -> None:
    async def answer() -> int:
        return 42

    async def outer() -> int:
        return prerequisites.run_coroutine(answer)

    assert prerequisites.run_coroutine(answer) == 42
    assert asyncio.run(outer()) == 42


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
