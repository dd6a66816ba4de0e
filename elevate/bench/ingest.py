"""`elevate bench ingest`: the save endpoint against real Kafka, beside a bare ASGI
endpoint on the same server stack, under the same load from wrk.

Prints requests/s and p50/p95/p99 for both and their ratio. Figures, never assertions:
the machine is shared and noisy, so compare the two numbers of one run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import DEFINITIONS
from elevate import services
from elevate.kafka import create_producer, ensure_topics
from elevate.settings import Settings
from ingest.service import attempt_id_for
from ingest.tokens import AttemptClaims, issue_attempt_token

ATTEMPTS = 256
WRK_SCRIPT = """
local bodies = {}
local paths = {}
local tokens = {}
local n = 0
init = function(args)
  local f = io.open(args[1])
  for line in f:lines() do
    local path, token, body = line:match("([^\\t]+)\\t([^\\t]+)\\t(.+)")
    table.insert(paths, path); table.insert(tokens, token); table.insert(bodies, body)
  end
  f:close()
end
request = function()
  n = n + 1
  local i = (n % #paths) + 1
  local body = bodies[i]:gsub("SEQ", tostring(n))
  return wrk.format("POST", paths[i],
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i]}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"non2xx\\": %d, " ..
    "\\"errors\\": %d, \\"p50\\": %f, \\"p95\\": %f, \\"p99\\": %f}\\n",
    summary.requests, summary.duration / 1e6, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
"""


@dataclass(frozen=True)
class Figures:
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50: float
    p95: float
    p99: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _publish_bench_contest(settings: Settings) -> tuple[str, str]:
    await ensure_topics(settings)
    contest_id, question_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    producer = create_producer(settings, client_id="elevate-bench")
    await producer.start()
    try:
        topic = DEFINITIONS.name(settings.topic_prefix)
        question = {
            "question_id": question_id,
            "contest_id": contest_id,
            "kind": "mcq_single",
            "prompt": "bench",
            "options": ["a", "b", "c", "d"],
            "correct_options": [1],
            "max_marks": 1.0,
            "negative_marks": 0.0,
            "partial_credit": False,
            "position": 0,
            "revision": 1,
        }
        contest = {
            "contest_id": contest_id,
            "name": "bench",
            "description": "",
            "start_at": now - timedelta(hours=1),
            "end_at": now + timedelta(hours=2),
            "duration_seconds": 3600,
            "question_ids": [question_id],
            "published_at": now,
            "revision": 1,
        }
        await producer.send_and_wait(
            topic, encode(Record.QUESTION_DEFINITION, question), key=question_id.encode()
        )
        await producer.send_and_wait(
            topic, encode(Record.CONTEST_DEFINITION, contest), key=contest_id.encode()
        )
    finally:
        await producer.stop()
    return contest_id, question_id


def _requests_file(settings: Settings, contest_id: str, question_id: str, folder: Path) -> Path:
    secret = settings.secret_key.get_secret_value()
    expires = datetime.now(UTC) + timedelta(hours=3)
    lines = []
    for n in range(ATTEMPTS):
        attempt_id = attempt_id_for(contest_id, f"bench{n}@example.org")
        token = issue_attempt_token(secret, AttemptClaims(attempt_id, contest_id), expires)
        body = json.dumps(
            {"question_id": question_id, "client_seq": 0, "selected_options": [n % 4]}
        ).replace('"client_seq": 0', '"client_seq": SEQ')
        lines.append(f"/api/v1/attempt/{attempt_id}/save\t{token}\t{body}")
    path = folder / "requests.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a benchmark server exited at start")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready")


def _wrk(url: str, script: Path, requests: Path, seconds: float, concurrency: int) -> Figures:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{concurrency}",
            f"-d{seconds:.0f}s",
            "-s",
            str(script),
            url,
            "--",
            str(requests),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^JSON (.*)$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no figures:\n{out}")
    return Figures(**json.loads(match.group(1)))


def _ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        raise RuntimeError("wrk is missing: apt-get install wrk")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True)


def _start(command: list[str], env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


async def run_ingest_bench(seconds: float, concurrency: int, workers: int) -> int:
    _ensure_wrk()
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    os.environ["TOPIC_PREFIX"] = prefix
    settings = Settings()
    services.ensure_prerequisites(settings)
    services.up(settings)
    contest_id, question_id = await _publish_bench_contest(settings)
    ingest_port, bare_port = _free_port(), _free_port()
    # Every request comes from one address and 256 attempts: rate limits off, so the
    # figures are the pipeline's, not the limiter's.
    env = {
        **os.environ,
        "TOPIC_PREFIX": prefix,
        "INGEST_PORT": str(ingest_port),
        "RATE_LIMIT_PER_ATTEMPT": "0",
        "RATE_LIMIT_PER_IP": "0",
        "METRICS_PORT": "0",
    }
    ingest = _start([sys.executable, "-m", "elevate", "run", "ingest"], env, workers)
    bare = _start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "elevate.bench.bare:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(bare_port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
        ],
        env,
        1,
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "save.lua"
            script.write_text(WRK_SCRIPT)
            requests = _requests_file(settings, contest_id, question_id, Path(folder))
            _wait_ready(f"http://127.0.0.1:{ingest_port}/readyz", ingest)
            _wait_ready(f"http://127.0.0.1:{bare_port}/", bare)
            # A short warm-up so connection set-up and first batches are not measured.
            _wrk(f"http://127.0.0.1:{ingest_port}", script, requests, 2, concurrency)
            save = _wrk(f"http://127.0.0.1:{ingest_port}", script, requests, seconds, concurrency)
            baseline = _wrk(f"http://127.0.0.1:{bare_port}", script, requests, seconds, concurrency)
    finally:
        for process in ingest + bare:
            process.terminate()
        for process in ingest + bare:
            process.wait(timeout=20)
    print(
        f"ingest bench: {workers} server process(es), {concurrency} connections, "
        f"{seconds:.0f}s each, Kafka acks=all on 127.0.0.1"
    )
    print(
        f"{'endpoint':<22} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'non-2xx':>8} {'errors':>7}"
    )
    for name, f in (("save (Kafka acked)", save), ("bare ASGI", baseline)):
        print(
            f"{name:<22} {f.rate:>9.0f} {f.p50:>8.2f} {f.p95:>8.2f} {f.p99:>8.2f} "
            f"{f.non2xx:>8} {f.errors:>7}"
        )
    ratio = save.rate / baseline.rate if baseline.rate else 0.0
    print(f"ratio save/bare: {ratio:.2f}")
    print(
        json.dumps(
            {
                "save_rps": round(save.rate),
                "save_p50_ms": save.p50,
                "save_p95_ms": save.p95,
                "save_p99_ms": save.p99,
                "bare_rps": round(baseline.rate),
                "bare_p99_ms": baseline.p99,
                "ratio": round(ratio, 3),
                "save_non2xx": save.non2xx,
            }
        )
    )
    return 0 if save.non2xx == 0 and save.errors == 0 else 1
