"""The code runner agent: runs candidates' programs, on the samples or their own input
("Run code") and on the hidden tests when an attempt is graded.

Each worker runs `CODE_RUN_CONCURRENCY` requests at once, so one slow program does not
hold up the runs behind it; a request still running holds its partition's committed
offset (streams.commits), so a worker killed mid-run runs it again after its restart,
and offsets Faust skipped are read back (streams.gaps). Sandboxed processes across
all of them are bounded by `EXECUTION_WORKERS`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import StreamT

from avro_schemas.codec import decode
from avro_schemas.records import Record
from elevate.observability import EXECUTION_SECONDS, GRADING_QUEUE_DEPTH
from streams.app import (
    app,
    attempt_events_topic,
    code_results_topic,
    code_runs_topic,
    dead_lettering,
    definitions,
    emit,
    gap_repair,
    settings,
)
from streams.definitions import Question
from streams.execution.languages import UnsupportedLanguageError
from streams.execution.runner import CodeRunner, create_runner
from streams.rules.execution import (
    ExecutionResult,
    RunVerdict,
    TestCase,
    score_tests,
)
from streams.rules.timing import server_now

log = logging.getLogger(__name__)

GRADER_VERSION = "code-1"
# What a run keeps of each test's output for the candidate ("Run code") or the record.
KEPT_OUTPUT_BYTES = 64 * 1024

_runner: CodeRunner | None = None
runs_gap_repair = gap_repair("code-runs-applied", code_runs_topic)


def runner() -> CodeRunner:
    global _runner
    if _runner is None:
        _runner = create_runner(settings)
    return _runner


def tests_for(request: dict[str, Any], question: Question) -> list[TestCase]:
    """Hidden tests to grade; the samples, or the candidate's own input, for a run."""
    if request["purpose"] == "grade":
        return list(question.hidden_tests)
    if request["custom_input"] is not None:
        return [TestCase("custom", request["custom_input"], b"")]
    return list(question.sample_tests)


def outcome_record(
    request: dict[str, Any], question: Question, result: ExecutionResult, runner_name: str
) -> dict[str, Any]:
    """The CodeExecuted record of a finished run."""
    custom = request["purpose"] == "run" and request["custom_input"] is not None
    verdicts = {t.test_id: t.verdict for t in result.tests}
    grading = request["purpose"] == "grade"
    score = score_tests(question.hidden_tests, verdicts, question.max_marks) if grading else 0.0
    verdict = result.verdict.value
    if custom and result.verdict is RunVerdict.WA:
        verdict = "OK"  # own input has no expected output: it ran to completion
    return {
        "event_id": request["event_id"],
        "attempt_id": request["attempt_id"],
        "contest_id": request["contest_id"],
        "purpose": request["purpose"],
        "question_id": request["question_id"],
        "answer_event_id": request["answer_event_id"],
        "language": request["language"],
        "verdict": verdict,
        "score": score,
        "max_score": question.max_marks if grading else 0.0,
        "compile_output": result.compile_output[:KEPT_OUTPUT_BYTES],
        "tests": [
            {
                "test_id": t.test_id,
                "verdict": "OK" if custom and t.verdict is RunVerdict.WA else t.verdict.value,
                "time_ms": t.time_ms,
                "memory_kb": t.memory_kb,
                # Hidden tests' outputs are kept out of the record: they would leak the tests.
                "stdout": b"" if grading else t.stdout[:KEPT_OUTPUT_BYTES],
                "stderr": t.stderr[:KEPT_OUTPUT_BYTES],
            }
            for t in result.tests
        ],
        "runner": runner_name,
        "grader_version": GRADER_VERSION,
        "server_ts": server_now(),
    }


async def execute(request: dict[str, Any]) -> dict[str, Any] | None:
    """Run one request; None when its question is unknown (dead-lettered by the caller)."""
    question = definitions.questions.get(request["question_id"])
    if question is None:
        return None
    started = time.perf_counter()
    try:
        if question.languages and request["language"] not in question.languages:
            raise UnsupportedLanguageError(f"{request['language']} is not allowed here")
        result = await runner().execute(
            request["language"],
            request["source"],
            tests_for(request, question),
            question.limits,
            question.compare_mode,
        )
    except UnsupportedLanguageError as exc:
        result = ExecutionResult(RunVerdict.CE, compile_output=str(exc))
    EXECUTION_SECONDS.labels(result.verdict.value, request["language"]).observe(
        time.perf_counter() - started
    )
    name = "judge0" if settings.judge0_url else "sandbox"
    return outcome_record(request, question, result, name)


@dead_lettering("code run")
async def run_one(key: bytes | None, value: bytes | None, topic: str) -> None:
    """Execute one request and send its outcome: a grading run back to the attempt's
    own stream (so it applies in order with the attempt's events), a candidate's run to
    the results topic ingest serves from."""
    await definitions.ready.wait()
    GRADING_QUEUE_DEPTH.inc()
    try:
        decoded = decode(value)
        if decoded.name != Record.CODE_EXECUTION_REQUESTED:
            raise ValueError(f"{decoded.name} is not a code execution request")
        request = decoded.value
        outcome = await execute(request)
        if outcome is None:
            raise ValueError(f"question {request['question_id']} is not defined")
        target = attempt_events_topic if request["purpose"] == "grade" else code_results_topic
        await emit(target, Record.CODE_EXECUTED, request["attempt_id"], outcome)
    finally:
        GRADING_QUEUE_DEPTH.dec()


@app.agent(code_runs_topic, concurrency=settings.code_run_concurrency)
async def run_code(stream: StreamT[bytes]) -> None:
    """Run up to CODE_RUN_CONCURRENCY requests at once, none skipped (see
    streams.gaps); a slow one holds the partition's commit, not the runs behind it.
    The stream is iterated at once, not after the definitions load: see streams.app."""
    await runs_gap_repair.apply(stream, run_one)
