"""Every process of `run all` serves /metrics, /healthz and /readyz, and the counters
move when candidates act."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import RunningPipeline
from tests.integration.conftest import CandidateSession, PublishContest, eventually

pytestmark = pytest.mark.integration

# The order of elevate.roles.process_groups in embedded mode, one ingest process.
PROCESSES = ("streams", "ingest", "api+sink-clickhouse", "sink-postgres")


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_every_process_reports_metrics_and_probes(
    publish_contest: PublishContest, candidate: object, pipeline: RunningPipeline
) -> None:
    contest = await publish_contest()
    person: CandidateSession = candidate(contest["id"])  # type: ignore[operator]
    await person.start()
    assert (await person.save(contest["questions"][0]["id"], 1, [1])).status_code == 202
    assert (await person.submit()).status_code == 202
    base = int(pipeline.env["METRICS_PORT"])
    ports = {name: base + n for n, name in enumerate(PROCESSES)}

    async with httpx.AsyncClient(timeout=5) as client:
        for name, port in ports.items():
            for probe in ("/healthz", "/readyz"):
                reply = await client.get(f"http://127.0.0.1:{port}{probe}")
                assert reply.status_code == 200, f"{name} {probe}: {reply.text}"

        async def scrape(name: str) -> str:
            return (await client.get(f"http://127.0.0.1:{ports[name]}/metrics")).text

        async def moved() -> bool:
            sink = await scrape("sink-postgres")
            return metric(sink, "elevate_sink_batch_size_count", sink="postgres") > 0 and (
                metric(await scrape("streams"), "elevate_events_consumed_total", role="streams") > 0
            )

        await eventually(moved, what="stream and sink counters to move")
        ingest = await scrape("ingest")
        route = "/api/v1/attempt/{attempt_id}/save"
        assert metric(ingest, "elevate_http_requests_total", route=route, status="202") >= 1
        assert metric(ingest, "elevate_http_request_seconds_count", route=route) >= 1
        produced = f"{pipeline.env['TOPIC_PREFIX']}attempt-events"
        assert metric(ingest, "elevate_events_produced_total", topic=produced) >= 3
        sink = await scrape("sink-postgres")
        assert metric(sink, "elevate_sink_flush_seconds_count", sink="postgres") > 0
        assert "elevate_consumer_lag{" in sink
        streams = await scrape("streams")
        graded = f"{pipeline.env['TOPIC_PREFIX']}grading-results"
        assert metric(streams, "elevate_events_produced_total", topic=graded) > 0
        api = (await client.get(f"{pipeline.api_url}/metrics")).text
        assert metric(api, "elevate_http_requests_total", role="api") > 0
