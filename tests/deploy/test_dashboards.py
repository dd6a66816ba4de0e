"""The Grafana dashboards: well-formed, on the provisioned datasources, the operations
dashboard on the agreed metric names, the data dashboard on the SQL of
deploy/grafana/queries/ (its query tests run that SQL on ClickHouse)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from elevate.settings import PROJECT_ROOT

GRAFANA = PROJECT_ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
QUERIES = GRAFANA / "queries"

# The metrics the roles export (what the operations dashboard may read) and their
# labels. Histograms also have their _bucket (with le), _count and _sum series.
METRICS: dict[str, frozenset[str]] = {
    "elevate_http_requests_total": frozenset({"role", "route", "status"}),
    "elevate_http_request_seconds": frozenset({"role", "route"}),
    "elevate_events_produced_total": frozenset({"topic"}),
    "elevate_events_consumed_total": frozenset({"topic", "role"}),
    "elevate_consumer_lag": frozenset({"topic", "partition", "group"}),
    "elevate_dead_letters_total": frozenset({"topic"}),
    "elevate_sink_batch_size": frozenset({"sink"}),
    "elevate_sink_flush_seconds": frozenset({"sink"}),
    "elevate_grading_queue_depth": frozenset(),
    "elevate_execution_seconds": frozenset({"verdict", "language"}),
    "elevate_active_attempts": frozenset(),
}
HISTOGRAMS = (
    "elevate_http_request_seconds",
    "elevate_sink_batch_size",
    "elevate_sink_flush_seconds",
    "elevate_execution_seconds",
)
SERIES: dict[str, frozenset[str]] = {
    **{name: labels for name, labels in METRICS.items() if name not in HISTOGRAMS},
    **{f"{name}_bucket": METRICS[name] | {"le"} for name in HISTOGRAMS},
    **{f"{name}_count": METRICS[name] for name in HISTOGRAMS},
    **{f"{name}_sum": METRICS[name] for name in HISTOGRAMS},
}
# What the SQL files' parameters become in Grafana (the ClickHouse plugin's macros).
GRAFANA_MACROS = {
    "{contest_id:String}": "${contest_id:singlequote}",
    "{from:DateTime64(3)}": "$__fromTime",
    "{to:DateTime64(3)}": "$__toTime",
    "{bucket_seconds:UInt32}": "$__interval_s",
}

# Grafana's interval variables, as it replaces them before sending a query.
GRAFANA_INTERVALS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s"}


def _family(series: str) -> str:
    """The metric a series belongs to: a histogram's _bucket, _count and _sum are its own."""
    for histogram in HISTOGRAMS:
        if series in (f"{histogram}_bucket", f"{histogram}_count", f"{histogram}_sum"):
            return histogram
    return series


def _load(name: str) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads((DASHBOARDS / name).read_text())
    return dashboard


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in _panels(dashboard) for t in p["targets"]]


def _grafana_sql(path: Path) -> str:
    sql = path.read_text()
    for parameter, macro in GRAFANA_MACROS.items():
        sql = sql.replace(parameter, macro)
    return sql


def _provisioned_datasources() -> dict[str, str]:
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "elevate.yml").read_text())
    return {d["uid"]: d["type"] for d in config["datasources"]}


@pytest.mark.parametrize("name", ["operations.json", "data.json"])
def test_dashboard_is_well_formed(name: str) -> None:
    dashboard = _load(name)
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
    datasources = _provisioned_datasources()
    for panel in _panels(dashboard):
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
            assert datasources.get(source["uid"]) == source["type"], panel["title"]


def _promql(expr: str) -> str:
    """The expression as Grafana sends it: its interval variables replaced."""
    for variable, value in GRAFANA_INTERVALS.items():
        expr = expr.replace(variable, value)
    return expr


def test_operations_dashboard_reads_only_the_agreed_metrics_and_labels(
    parse_promql: Callable[[list[str]], list[dict[str, Any]]],
) -> None:
    targets = _targets(_load("operations.json"))
    reports = parse_promql([_promql(t["expr"]) for t in targets])
    used: set[str] = set()
    for target, report in zip(targets, reports, strict=True):
        expr = target["expr"]
        assert not report["error"], f"{expr}: {report['error']}"
        assert report["type"] in ("vector", "scalar"), f"{expr} is a {report['type']}"
        names = {s["name"] for s in report["selectors"]}
        unknown = names - set(SERIES)
        assert not unknown, f"{sorted(unknown)} in {expr}"
        for selected in report["selectors"]:
            extra = set(selected["labels"]) - SERIES[selected["name"]]
            assert not extra, f"{selected['name']} has no label {sorted(extra)}: {expr}"
        labels = frozenset().union(*(SERIES[name] for name in names))
        assert set(report["grouping"]) <= labels, f"grouping by no label of {expr}"
        if "histogram_quantile" in expr:
            assert "le" in report["grouping"], f"{expr} loses the buckets"
        legend = set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]))
        assert legend <= set(report["grouping"]) | labels, f"legend {target['legendFormat']}"
        used |= names
    assert {_family(name) for name in used} == set(METRICS), "every metric is on the dashboard"


def test_the_agreed_metrics_are_those_the_roles_export() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    from elevate import observability

    exported = {}
    for metric in vars(observability).values():
        if isinstance(metric, MetricWrapperBase):
            # prometheus_client keeps a metric's name (a counter's without _total), type
            # and label names in these attributes; a counter is exported as <name>_total.
            name = metric._name + ("_total" if metric._type == "counter" else "")
            exported[name] = frozenset(metric._labelnames)
    assert exported == METRICS


def test_the_promql_check_finds_mistakes(
    parse_promql: Callable[[list[str]], list[dict[str, Any]]],
) -> None:
    bad, good = parse_promql(["sum(rate(elevate_consumer_lag[5m])", "sum by (topic) (up)"])
    assert "parse error" in bad["error"]
    assert good["grouping"] == ["topic"] and good["selectors"][0]["name"] == "up"


def test_operations_dashboard_shows_what_operators_watch() -> None:
    exprs = " ".join(t["expr"] for t in _targets(_load("operations.json")))
    for needed in (
        "sum by (topic) (rate(elevate_events_produced_total",
        "sum by (topic, role) (rate(elevate_events_consumed_total",
        "histogram_quantile(0.5, sum by (le, role, route) (rate(elevate_http_request_seconds",
        "histogram_quantile(0.99, sum by (le, role, route) (rate(elevate_http_request_seconds",
        "elevate_consumer_lag",
        "elevate_dead_letters_total",
        "elevate_sink_flush_seconds_bucket",
        "elevate_grading_queue_depth",
    ):
        assert needed in exprs, needed


def test_data_dashboard_runs_the_sql_of_the_query_files() -> None:
    dashboard = _load("data.json")
    files = {path.stem: _grafana_sql(path) for path in QUERIES.glob("*.sql")}
    by_sql = {sql: stem for stem, sql in files.items()}
    used = []
    for target in _targets(dashboard):
        assert target["rawSql"] in by_sql, f"a panel's SQL is none of {QUERIES}: edit both"
        used.append(by_sql[target["rawSql"]])
    [variable] = dashboard["templating"]["list"]
    assert variable["name"] == "contest_id"
    assert variable["datasource"]["uid"] == "clickhouse"
    used.append(by_sql[variable["query"]])
    assert sorted(used) == sorted(files), "every query file is on the dashboard once"
    for sql in files.values():
        assert "{" not in sql.replace("${contest_id:singlequote}", ""), "a parameter with no macro"


def test_data_dashboard_reads_the_sink_tables() -> None:
    tables = {"events", "responses", "attempt_scores", "proctoring_flags"}
    for path in QUERIES.glob("*.sql"):
        read = set(re.findall(r"\bFROM\s+([a-z_]+)", path.read_text()))
        assert read and read <= tables, f"{path.name} reads {sorted(read - tables)}"
