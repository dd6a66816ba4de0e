"""The Judge0 runner against a fake Judge0 CE at the HTTP transport, with request and
response bodies shaped as Judge0's API documentation shows them."""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from streams.execution.judge0 import Judge0Config, Judge0Runner
from streams.rules.execution import CompareMode, RunLimits, RunVerdict, TestCase

URL = "http://judge0.test"
LIMITS = RunLimits(cpu_seconds=2, wall_seconds=5, memory_mb=128)
CONFIG_INFO = {  # GET /config_info with Judge0's documented defaults
    "cpu_time_limit": 2,
    "max_cpu_time_limit": 15,
    "wall_time_limit": 5,
    "max_wall_time_limit": 20,
    "memory_limit": 128000,
    "max_memory_limit": 256000,
    "max_processes_and_or_threads": 60,
    "max_max_processes_and_or_threads": 120,
    "max_file_size": 1024,
    "max_max_file_size": 4096,
}
STATUS_NAMES = {
    1: "In Queue",
    2: "Processing",
    3: "Accepted",
    5: "Time Limit Exceeded",
    6: "Compilation Error",
    8: "Runtime Error (SIGXFSZ)",
    11: "Runtime Error (NZEC)",
    12: "Runtime Error (Other)",
    13: "Internal Error",
    14: "Exec Format Error",
}

Json = dict[str, Any]
# Given the submission (decoded stdin) and how many times this stdin was submitted,
# the finished result's fields.
Behaviour = Callable[[bytes, int], Json]


def b64(data: bytes) -> str:
    # Judge0 (Ruby's Base64.encode64) breaks its base64 into 60-character lines.
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + 60] for i in range(0, len(text), 60)) + "\n"


def finished(status: int = 3, stdout: bytes | None = b"", **fields: Any) -> Json:
    result: Json = {
        "status": {"id": status, "description": STATUS_NAMES.get(status, "")},
        "stdout": b64(stdout) if stdout is not None else None,
        "stderr": None,
        "compile_output": None,
        "time": "0.012",
        "memory": 3400,
        "exit_code": 0 if status == 3 else None,
        "exit_signal": None,
        "message": None,
    }
    result.update(fields)
    return result


def echo(stdin: bytes, attempt: int) -> Json:
    return finished(stdout=stdin)


@dataclass
class FakeJudge0:
    """Judge0 CE's batch endpoints, with scripted failures."""

    behaviour: Behaviour = echo
    post_failures: int = 0  # leading POSTs answered 503 "queue full"
    poll_failures: list[str] = field(default_factory=list)  # "500" or "transport", per GET
    processing_polls: int = 0  # polls that still show every run as Processing
    config_info: bool = True
    requests: list[httpx.Request] = field(default_factory=list)
    post_times: list[float] = field(default_factory=list)
    submitted: list[Json] = field(default_factory=list)
    _tokens: dict[str, Json] = field(default_factory=dict)
    _attempts: dict[bytes, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/config_info":
            return httpx.Response(200 if self.config_info else 404, json=CONFIG_INFO)
        assert request.url.path == "/submissions/batch"
        assert request.url.params["base64_encoded"] == "true"
        if request.method == "POST":
            return self._create(request)
        return self._show(request)

    @property
    def posts(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST"]

    def _create(self, request: httpx.Request) -> httpx.Response:
        self.post_times.append(time.monotonic())
        if self.post_failures:
            self.post_failures -= 1
            return httpx.Response(503, json={"error": "queue is full"})
        created = []
        for submission in json.loads(request.content)["submissions"]:
            self.submitted.append(submission)
            stdin = base64.b64decode(submission["stdin"])
            self._attempts[stdin] = self._attempts.get(stdin, 0) + 1
            token = f"00000000-0000-4000-8000-{next(self._ids):012d}"
            self._tokens[token] = self.behaviour(stdin, self._attempts[stdin])
            created.append({"token": token})
        return httpx.Response(201, json=created)

    def _show(self, request: httpx.Request) -> httpx.Response:
        if self.poll_failures:
            failure = self.poll_failures.pop(0)
            if failure == "transport":
                raise httpx.ConnectError("connection refused", request=request)
            return httpx.Response(int(failure), text="Internal Server Error")
        fields = request.url.params["fields"].split(",")
        tokens = request.url.params["tokens"].split(",")
        still_processing = self.processing_polls > 0
        self.processing_polls -= 1
        answer = []
        for token in tokens:
            result = {"token": token, **self._tokens[token]}
            if still_processing:
                result.update(status={"id": 2, "description": "Processing"}, stdout=None)
            answer.append({name: result.get(name) for name in fields})
        return httpx.Response(200, json={"submissions": answer})


@pytest.fixture
async def make_runner() -> AsyncIterator[Callable[..., Judge0Runner]]:
    runners: list[Judge0Runner] = []

    def make(fake: FakeJudge0, **config: Any) -> Judge0Runner:
        settings: Json = {
            "url": URL,
            "max_attempts": 3,
            "backoff_seconds": 0.001,
            "poll_seconds": 0.0,
            **config,
        }
        runner = Judge0Runner(Judge0Config(**settings), transport=httpx.MockTransport(fake))
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.aclose()


TWO_TESTS = [
    TestCase("t1", b"1 2 \n", b"1 2"),
    TestCase("t2", b"3\n", b"4"),
]


async def test_a_batch_is_judged_by_our_own_comparison(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(processing_polls=2)
    result = await make_runner(fake).execute(
        "python3", "print(input())", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert [t.verdict for t in result.tests] == [RunVerdict.AC, RunVerdict.WA]
    assert result.verdict is RunVerdict.WA
    assert result.tests[0].stdout == b"1 2 \n"
    assert result.tests[0].time_ms == 12 and result.tests[0].memory_kb == 3400

    [post] = fake.posts
    submissions = json.loads(post.content)["submissions"]
    assert len(submissions) == 2
    first = submissions[0]
    assert "expected_output" not in first  # compared here, under the question's mode
    assert base64.b64decode(first["source_code"]) == b"print(input())"
    assert base64.b64decode(first["stdin"]) == b"1 2 \n"
    assert first["language_id"] == 71
    assert first["cpu_time_limit"] == 2 and first["wall_time_limit"] == 5
    assert first["memory_limit"] == 128 * 1024
    # Our 8 MiB file limit is above the server's documented maximum: capped, not refused.
    assert first["max_file_size"] == 4096


async def test_exact_mode_applies_to_judge0_output(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    result = await make_runner(FakeJudge0()).execute(
        "python3", "", [TestCase("t1", b"1 2 \n", b"1 2")], LIMITS, CompareMode.EXACT
    )
    assert result.verdict is RunVerdict.WA


async def test_internal_error_is_submitted_again_and_then_judged(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    def flaky(stdin: bytes, attempt: int) -> Json:
        if stdin == b"3\n" and attempt == 1:
            return finished(13, stdout=None, message="No such file or directory")
        return finished(stdout=b"4\n")

    fake = FakeJudge0(behaviour=flaky)
    result = await make_runner(fake).execute(
        "cpp17", "int main(){}", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert [t.verdict for t in result.tests] == [RunVerdict.WA, RunVerdict.AC]
    # Only the test that hit the internal error went again.
    assert len(fake.posts) == 2
    assert [base64.b64decode(s["stdin"]) for s in fake.submitted] == [b"1 2 \n", b"3\n", b"3\n"]
    assert fake.submitted[0]["compiler_options"] == "-std=c++17 -O2"


async def test_internal_error_every_time_ends_as_ie(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(behaviour=lambda stdin, attempt: finished(13, stdout=None))
    result = await make_runner(fake, max_attempts=3).execute(
        "python3", "", TWO_TESTS[:1], LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.IE
    assert len(fake.posts) == 3


async def test_queue_full_is_retried_with_backoff(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(post_failures=2)
    result = await make_runner(fake).execute("python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM)
    assert [t.verdict for t in result.tests] == [RunVerdict.AC, RunVerdict.WA]
    assert len(fake.posts) == 3


async def test_queue_full_forever_ends_as_ie_after_growing_waits(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(post_failures=100)
    result = await make_runner(fake, max_attempts=4, backoff_seconds=0.02).execute(
        "python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.IE
    assert [t.verdict for t in result.tests] == [RunVerdict.IE, RunVerdict.IE]
    assert len(fake.posts) == 4
    gaps = [b - a for a, b in itertools.pairwise(fake.post_times)]
    for retry, gap in enumerate(gaps):
        assert gap >= 0.02 * 2**retry * 0.9


async def test_polling_retries_never_submit_twice(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(poll_failures=["500", "transport"], processing_polls=1)
    result = await make_runner(fake).execute("python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM)
    assert [t.verdict for t in result.tests] == [RunVerdict.AC, RunVerdict.WA]
    assert len(fake.posts) == 1
    assert len(fake.submitted) == 2


async def test_polling_that_keeps_failing_ends_as_ie_without_resubmitting(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0(poll_failures=["503"] * 10)
    result = await make_runner(fake, max_attempts=3).execute(
        "python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.IE
    assert len(fake.posts) == 1


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        # Judge0 has no memory verdict: at the limit, or killed by SIGKILL, is MLE.
        (finished(stdout=b"4\n", memory=128 * 1024), RunVerdict.MLE),
        (finished(12, stdout=None, exit_signal=9, memory=9000), RunVerdict.MLE),
        (finished(11, stdout=None, exit_code=137), RunVerdict.MLE),
        (
            finished(11, stdout=None, exit_code=1, stderr=b64(b"MemoryError\n")),
            RunVerdict.MLE,
        ),
        (finished(11, stdout=None, exit_code=1), RunVerdict.RE),
        (finished(5, stdout=None, time="2.1"), RunVerdict.TLE),
        (finished(8, stdout=None, exit_signal=25), RunVerdict.OLE),
        (finished(8, stdout=None), RunVerdict.OLE),
        (finished(14, stdout=None), RunVerdict.IE),
        (finished(stdout=b"4\n" * (LIMITS.max_output_bytes // 2 + 1)), RunVerdict.OLE),
        (finished(stdout=b"4\n", time="2.5"), RunVerdict.TLE),
    ],
)
async def test_statuses_map_to_the_shared_verdicts(
    make_runner: Callable[..., Judge0Runner], result: Json, verdict: RunVerdict
) -> None:
    fake = FakeJudge0(behaviour=lambda stdin, attempt: result)
    outcome = await make_runner(fake).execute(
        "python3", "", [TestCase("t", b"", b"4")], LIMITS, CompareMode.TRIM
    )
    assert outcome.tests[0].verdict is verdict


async def test_compilation_error_keeps_the_message(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    message = "main.cpp:1:12: error: \u2018x\u2019 was not declared in this scope\n".encode()
    fake = FakeJudge0(
        behaviour=lambda stdin, attempt: finished(6, stdout=None, compile_output=b64(message))
    )
    result = await make_runner(fake).execute("cpp17", "", TWO_TESTS, LIMITS, CompareMode.TRIM)
    assert result.verdict is RunVerdict.CE
    assert result.compile_output == message.decode()
    assert result.tests == []


async def test_raw_output_bytes_survive(make_runner: Callable[..., Judge0Runner]) -> None:
    output = b"\xff\xfe " + "😀".encode() + b"x" * 500
    fake = FakeJudge0(behaviour=lambda stdin, attempt: finished(stdout=output))
    result = await make_runner(fake).execute(
        "python3", "", [TestCase("t", b"", output)], LIMITS, CompareMode.EXACT
    )
    assert result.tests[0].stdout == output
    assert result.verdict is RunVerdict.AC


async def test_auth_header_is_sent_when_configured(
    make_runner: Callable[..., Judge0Runner],
) -> None:
    fake = FakeJudge0()
    await make_runner(fake, auth_token="s3cret").execute(
        "java17", "", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert fake.requests
    assert all(r.headers["X-Auth-Token"] == "s3cret" for r in fake.requests)
    assert json.loads(fake.posts[0].content)["submissions"][0]["language_id"] == 91

    custom = FakeJudge0()
    await make_runner(custom, auth_header="X-RapidAPI-Key", auth_token="k").execute(
        "python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM
    )
    assert all(r.headers["X-RapidAPI-Key"] == "k" for r in custom.requests)


async def test_no_auth_header_without_a_token(make_runner: Callable[..., Judge0Runner]) -> None:
    fake = FakeJudge0(config_info=False)  # and no config_info: limits go uncapped
    await make_runner(fake).execute("python3", "", TWO_TESTS, LIMITS, CompareMode.TRIM)
    assert all("X-Auth-Token" not in r.headers for r in fake.requests)
    assert fake.submitted[0]["max_file_size"] == LIMITS.max_file_bytes // 1024
