"""The Judge0 code runner: Judge0 CE's documented HTTP API, through httpx.

One batch POST (`/submissions/batch?base64_encoded=true`) creates a submission per test,
then `GET /submissions/batch?tokens=…` is polled until none is In Queue (1) or
Processing (2). Expected output is never sent: the output is compared here with
`outputs_match`, so the question's comparison mode applies as with the local sandbox.

Failures of Judge0 itself are retried with exponential backoff, a bounded number of
times, and end as IE: a refused or failed batch POST (HTTP 5xx, 503 "queue full", 429,
transport errors), failed polls, and a test whose run ended in Internal Error (13). A
test that has a token is never submitted again unless its run ended in Internal Error,
so no run is graded twice.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from streams.execution.languages import Language, get_language
from streams.rules.execution import (
    KIB,
    CompareMode,
    ExecutionResult,
    ProcessOutcome,
    RunLimits,
    RunVerdict,
    TestCase,
    TestRun,
    judge_outcome,
    output_verdict,
    overall_verdict,
)

log = logging.getLogger(__name__)

# Judge0 status ids (GET /statuses).
IN_QUEUE, PROCESSING = 1, 2
ACCEPTED, WRONG_ANSWER, TIME_LIMIT_EXCEEDED, COMPILATION_ERROR = 3, 4, 5, 6
SIGSEGV_ERROR, SIGXFSZ_ERROR, SIGFPE_ERROR, SIGABRT_ERROR, NZEC_ERROR, OTHER_ERROR = range(7, 13)
INTERNAL_ERROR, EXEC_FORMAT_ERROR = 13, 14
RUNTIME_ERROR_SIGNALS: Mapping[int, int] = {
    SIGSEGV_ERROR: signal.SIGSEGV,
    SIGXFSZ_ERROR: signal.SIGXFSZ,
    SIGFPE_ERROR: signal.SIGFPE,
    SIGABRT_ERROR: signal.SIGABRT,
}
RESULT_FIELDS = (
    "token,status,stdout,stderr,compile_output,time,memory,exit_code,exit_signal,message"
)
RETRYABLE_HTTP = frozenset({429, 500, 502, 503, 504})
# Judge0 answers 137 (128 + SIGKILL) as the exit code of a run its cgroup killed.
KILLED_EXIT_CODE = 128 + signal.SIGKILL
STDERR_KEEP_BYTES = 64 * KIB

# Submission limits and the config_info field capping each (Judge0 refuses a batch with
# any value above its maximum).
_LIMIT_CAPS = {
    "cpu_time_limit": "max_cpu_time_limit",
    "wall_time_limit": "max_wall_time_limit",
    "memory_limit": "max_memory_limit",
    "max_processes_and_or_threads": "max_max_processes_and_or_threads",
    "max_file_size": "max_max_file_size",
}

Json = dict[str, Any]


@dataclass(frozen=True)
class Judge0Config:
    """Where Judge0 is and how patiently to talk to it."""

    url: str
    auth_header: str = "X-Auth-Token"
    auth_token: str = ""
    # Tries of one request (POST, or each poll) before its tests end as IE.
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 8.0
    poll_seconds: float = 0.25
    poll_max_seconds: float = 2.0
    # How long a submission's runs may take in all before the rest end as IE.
    timeout_seconds: float = 300.0
    # Judge0's default cap on submissions per batch request.
    batch_size: int = 20
    request_timeout_seconds: float = 30.0


class Judge0Unavailable(RuntimeError):
    """Judge0 did not answer usefully within the allowed attempts."""


class Judge0Runner:
    """Runs submissions on a Judge0 CE server."""

    def __init__(
        self, config: Judge0Config, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        headers = {config.auth_header: config.auth_token} if config.auth_token else {}
        self._config = config
        self._client = httpx.AsyncClient(
            base_url=config.url,
            headers=headers,
            timeout=config.request_timeout_seconds,
            transport=transport,
        )
        self._caps: Mapping[str, float] | None = None

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def execute(
        self,
        language: str,
        source: str,
        tests: Sequence[TestCase],
        limits: RunLimits,
        compare: CompareMode = CompareMode.TRIM,
    ) -> ExecutionResult:
        """Run `source` on every test in Judge0 and judge each run here.

        Raises UnsupportedLanguageError for an unknown language.
        """
        lang = get_language(language)
        deadline = time.monotonic() + self._config.timeout_seconds
        limit_fields = await self._limit_fields(lang, limits)
        finished: dict[str, Json | None] = {}  # None: no usable run, IE
        submissions = dict.fromkeys((test.test_id for test in tests), 0)
        to_run = list(tests)
        while to_run:
            for test in to_run:
                submissions[test.test_id] += 1
            tokens = await self._submit(lang, source, to_run, limit_fields)
            results = await self._poll([t for t in tokens.values() if t], deadline)
            retry: list[TestCase] = []
            for test in to_run:
                token = tokens[test.test_id]
                result = results.get(token) if token else None
                if (
                    result is not None
                    and _status(result) == INTERNAL_ERROR
                    and submissions[test.test_id] < self._config.max_attempts
                    and time.monotonic() < deadline
                ):
                    log.warning(
                        "judge0 internal error on test %s (%s); submitting it again",
                        test.test_id,
                        result.get("message"),
                    )
                    retry.append(test)
                else:
                    finished[test.test_id] = result
            to_run = retry
            if to_run:
                await asyncio.sleep(self._backoff(max(submissions.values()) - 1))

        compile_errors = [
            r for r in finished.values() if r is not None and _status(r) == COMPILATION_ERROR
        ]
        if compile_errors:
            output = _decode(compile_errors[0].get("compile_output"))
            return ExecutionResult(RunVerdict.CE, output.decode("utf-8", errors="replace"), [])
        runs = [_test_run(test, finished[test.test_id], lang, limits, compare) for test in tests]
        return ExecutionResult(overall_verdict(runs), "", runs)

    async def _submit(
        self,
        lang: Language,
        source: str,
        tests: Sequence[TestCase],
        limit_fields: Mapping[str, float | int],
    ) -> dict[str, str | None]:
        """Create one Judge0 submission per test: test id → token (None when refused)."""
        source_b64 = _encode(source.encode("utf-8"))
        tokens: dict[str, str | None] = {}
        for start in range(0, len(tests), self._config.batch_size):
            chunk = tests[start : start + self._config.batch_size]
            body: Json = {
                "submissions": [
                    {
                        "source_code": source_b64,
                        "language_id": lang.judge0_language_id,
                        "stdin": _encode(test.input),
                        **limit_fields,
                        **(
                            {"compiler_options": lang.judge0_compiler_options}
                            if lang.judge0_compiler_options
                            else {}
                        ),
                    }
                    for test in chunk
                ]
            }
            try:
                created = await self._request(
                    "POST", "/submissions/batch", params={"base64_encoded": "true"}, json=body
                )
            except Judge0Unavailable as exc:
                log.error("judge0 refused %d submissions: %s", len(chunk), exc)
                created = []
            items = created if isinstance(created, list) else []
            for index, test in enumerate(chunk):
                item = items[index] if index < len(items) else None
                token = item.get("token") if isinstance(item, dict) else None
                if token is None and item is not None:
                    log.error("judge0 refused test %s: %s", test.test_id, item)
                tokens[test.test_id] = token
        return tokens

    async def _poll(self, tokens: Sequence[str], deadline: float) -> dict[str, Json]:
        """Results of finished runs by token; tokens still pending at the deadline, or
        when polling keeps failing, are left out."""
        results: dict[str, Json] = {}
        pending = list(tokens)
        interval = self._config.poll_seconds
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self._config.poll_max_seconds)
            for start in range(0, len(pending), self._config.batch_size):
                chunk = pending[start : start + self._config.batch_size]
                try:
                    answer = await self._request(
                        "GET",
                        "/submissions/batch",
                        params={
                            "tokens": ",".join(chunk),
                            "base64_encoded": "true",
                            "fields": RESULT_FIELDS,
                        },
                    )
                except Judge0Unavailable as exc:
                    log.error("judge0 polling failed for %d runs: %s", len(chunk), exc)
                    return results
                items = answer.get("submissions") if isinstance(answer, dict) else None
                for item in items or []:
                    if isinstance(item, dict) and _status(item) not in (IN_QUEUE, PROCESSING):
                        results[str(item.get("token"))] = item
            pending = [token for token in pending if token not in results]
        if pending:
            log.error("judge0 runs still pending at the deadline: %d", len(pending))
        return results

    async def _limit_fields(self, lang: Language, limits: RunLimits) -> dict[str, float | int]:
        """The submission's limit attributes, capped to the server's maxima."""
        wanted: dict[str, float | int] = {
            "cpu_time_limit": limits.cpu_seconds,
            "wall_time_limit": limits.wall_seconds,
            # Judge0 limits the address space; a JVM is configured for that by Judge0's
            # own language set-up, so the heap limit is passed as is.
            "memory_limit": limits.memory_mb * KIB,
            "max_processes_and_or_threads": limits.max_processes,
            "max_file_size": limits.max_file_bytes // KIB,
        }
        caps = await self._server_caps()
        capped = {name: min(value, caps.get(name, value)) for name, value in wanted.items()}
        if capped != wanted:
            log.warning("judge0 caps the %s limits: %s (asked %s)", lang.id, capped, wanted)
        return capped

    async def _server_caps(self) -> Mapping[str, float]:
        """The server's maximum for each limit (GET /config_info), read once."""
        if self._caps is None:
            try:
                info = await self._request("GET", "/config_info", attempts=1)
            except Judge0Unavailable as exc:
                log.warning("judge0 config_info unavailable (%s); limits sent uncapped", exc)
                info = {}
            caps: dict[str, float] = {}
            if isinstance(info, dict):
                for name, cap in _LIMIT_CAPS.items():
                    if isinstance(info.get(cap), int | float):
                        caps[name] = info[cap]
            self._caps = caps
        return self._caps

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Json | None = None,
        attempts: int | None = None,
    ) -> Any:
        """One API call, retried with backoff on transport errors and retryable statuses."""
        tries = attempts or self._config.max_attempts
        problem = ""
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(self._backoff(attempt - 1))
            try:
                response = await self._client.request(method, path, params=params, json=json)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in RETRYABLE_HTTP:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.is_error:
                # A 4xx other than 429 will not change on a retry (bad limits, bad token).
                raise Judge0Unavailable(f"HTTP {response.status_code}: {response.text[:500]}")
            return response.json()
        raise Judge0Unavailable(f"{method} {path} failed {tries} times; last: {problem}")

    def _backoff(self, retry: int) -> float:
        return min(self._config.backoff_seconds * 2.0**retry, self._config.backoff_max_seconds)


def _test_run(
    test: TestCase, result: Json | None, lang: Language, limits: RunLimits, compare: CompareMode
) -> TestRun:
    """Judge one Judge0 result with the shared verdict rules."""
    if result is None:
        return TestRun(test.test_id, RunVerdict.IE, 0, 0)
    status = _status(result)
    stdout = _decode(result.get("stdout"))
    stderr = _decode(result.get("stderr"))
    exit_code = result.get("exit_code")
    exit_signal = result.get("exit_signal") or RUNTIME_ERROR_SIGNALS.get(status)
    memory_kb = int(result.get("memory") or 0)
    failed = status != ACCEPTED or exit_signal is not None or exit_code not in (0, None)
    outcome = ProcessOutcome(
        exit_code=exit_code,
        signal=exit_signal,
        cpu_ms=round(float(result.get("time") or 0) * 1000),
        memory_kb=memory_kb,
        killed_for_output=len(stdout) > limits.max_output_bytes,
        # Judge0 has no memory verdict: a run that reached the limit, was killed by
        # SIGKILL (its cgroup's OOM killer) or whose runtime said so ran out of memory.
        out_of_memory=(
            memory_kb >= limits.memory_mb * KIB
            or exit_signal == signal.SIGKILL
            or exit_code == KILLED_EXIT_CODE
            or (failed and lang.reports_out_of_memory(stderr))
        ),
    )
    if status in (INTERNAL_ERROR, EXEC_FORMAT_ERROR, IN_QUEUE, PROCESSING):
        log.error("judge0 gave test %s status %s: %s", test.test_id, status, result.get("message"))
    return TestRun(
        test_id=test.test_id,
        verdict=_verdict(status, outcome, stdout, test, limits, compare),
        time_ms=outcome.cpu_ms,
        memory_kb=outcome.memory_kb,
        stdout=stdout[: limits.max_output_bytes],
        stderr=stderr[:STDERR_KEEP_BYTES],
        exit_code=exit_code,
        signal=exit_signal,
    )


def _verdict(
    status: int,
    outcome: ProcessOutcome,
    stdout: bytes,
    test: TestCase,
    limits: RunLimits,
    compare: CompareMode,
) -> RunVerdict:
    if status in (INTERNAL_ERROR, EXEC_FORMAT_ERROR, IN_QUEUE, PROCESSING):
        return RunVerdict.IE
    if status == TIME_LIMIT_EXCEEDED:
        return RunVerdict.TLE
    verdict = judge_outcome(outcome, limits)
    if verdict is not None:
        return verdict
    if status == WRONG_ANSWER:  # only when expected output was sent, which we never do
        return RunVerdict.WA
    if status == SIGXFSZ_ERROR:
        return RunVerdict.OLE
    if status != ACCEPTED:  # a runtime error status without exit code or signal
        return RunVerdict.RE
    return output_verdict(test.expected, stdout, compare)


def _status(result: Json) -> int:
    status = result.get("status")
    if isinstance(status, dict):
        return int(status.get("id", INTERNAL_ERROR))
    return int(result.get("status_id", INTERNAL_ERROR))


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode(value: object) -> bytes:
    # Judge0 wraps its base64 every 60 characters; b64decode skips the newlines.
    return base64.b64decode(value) if isinstance(value, str) else b""
