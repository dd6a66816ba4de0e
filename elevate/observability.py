"""Metrics and probes: every metric the roles export, defined once, and the small
operations server (`/metrics`, `/healthz`, `/readyz`) each process runs on its
`METRICS_PORT`.

The server is a stdlib thread, so it works the same beside uvicorn, the sinks' loop
and the Faust worker, which owns its event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "elevate_http_requests", "HTTP requests answered", ["role", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "elevate_http_request_seconds",
    "HTTP request latency",
    ["role", "route"],
    buckets=LATENCY_BUCKETS,
)
EVENTS_PRODUCED = Counter("elevate_events_produced", "Records produced", ["topic"])
EVENTS_CONSUMED = Counter("elevate_events_consumed", "Records consumed", ["topic", "role"])
CONSUMER_LAG = Gauge(
    "elevate_consumer_lag",
    "Records behind the end of the partition",
    ["topic", "partition", "group"],
)
DEAD_LETTERS = Counter("elevate_dead_letters", "Records dead-lettered", ["topic"])
SINK_BATCH_SIZE = Histogram(
    "elevate_sink_batch_size",
    "Records per sink batch",
    ["sink"],
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
)
SINK_FLUSH_SECONDS = Histogram(
    "elevate_sink_flush_seconds",
    "Time to write one sink batch",
    ["sink"],
    buckets=LATENCY_BUCKETS,
)
GRADING_QUEUE_DEPTH = Gauge("elevate_grading_queue_depth", "Code executions waiting or running")
EXECUTION_SECONDS = Histogram(
    "elevate_execution_seconds",
    "Code execution time per test",
    ["verdict", "language"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
)
ACTIVE_ATTEMPTS = Gauge("elevate_active_attempts", "Attempts started and not yet finished")


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def observe_request(role: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(role, route, str(status)).inc()
    HTTP_SECONDS.labels(role, route).observe(seconds)


class RequestMetrics:
    """ASGI middleware counting requests by route template (not raw path, which would
    make one series per attempt id) and status."""

    def __init__(self, app: ASGIApp, role: str) -> None:
        self.app = app
        self.role = role

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            observe_request(self.role, template, status, time.perf_counter() - started)


def metrics_response_body() -> tuple[bytes, str]:
    """The process's metrics in Prometheus text format, with its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def _handler(ready: Callable[[], bool]) -> type[BaseHTTPRequestHandler]:
    class OperationsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._reply(200, b'{"status":"ok"}', "application/json")
            elif self.path == "/readyz":
                ok = ready()
                self._reply(
                    200 if ok else 503,
                    b'{"ready":%s}' % (b"true" if ok else b"false"),
                    "application/json",
                )
            else:
                self._reply(404, b'{"detail":"not found"}', "application/json")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the logs

    return OperationsHandler


def start_operations_server(host: str, port: int, ready: Callable[[], bool]) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz from a daemon thread."""
    server = ThreadingHTTPServer((host, port), _handler(ready))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="operations", daemon=True).start()
    log.info("metrics and probes on http://%s:%d", host, port)
    return server
