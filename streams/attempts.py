"""The attempts agent: one state per attempt, grading on finish, and the expiry sweep.

The agent only decodes, calls `streams.rules.attempt`, stores the state and emits. A
redelivered event re-emits the same outputs with the same ids, so a crash between a
state write and an output never loses a result.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from faust.types import StreamT

from avro_schemas.codec import decode, encode
from avro_schemas.records import Record
from elevate.observability import ACTIVE_ATTEMPTS, EVENTS_CONSUMED
from streams.app import (
    STATE_MESSAGE_BYTES,
    app,
    attempt_clock_topic,
    attempt_events_topic,
    code_runs_topic,
    dead_lettering,
    definitions,
    emit,
    gap_repair,
    grading_results_topic,
    scores_by_contest_topic,
    settings,
)
from streams.rules import attempt as rules
from streams.rules.attempt import MAX_CLIENT_SEQ, AttemptState, SavedAnswer
from streams.rules.scoring import answer_problem
from streams.rules.timing import is_on_time, server_now

log = logging.getLogger(__name__)

RESULT_NAMESPACE = uuid.UUID("0b6f5f0e-0d3c-4a55-8f3e-5d7f0b8e2c41")
# Ingest may accept a start a moment before this worker sees the contest's definition.
DEFINITION_WAIT_SECONDS = 2.0
EXPIRY_SWEEP_SECONDS = 1.0
EXPIRY_RESEND_SECONDS = 30.0

attempts_table = app.Table(
    "attempts",
    default=None,
    key_type=bytes,
    value_type=bytes,
    partitions=attempt_events_topic.partitions,
    # An attempt's state holds its answers: up to MAX_ANSWER_BYTES for each question.
    extra_topic_configs={"max.message.bytes": str(STATE_MESSAGE_BYTES)},
)

events_gap_repair = gap_repair("applied-offsets", attempt_events_topic)

# Attempts whose expiry event was sent recently, so the sweep does not resend each second.
_expiry_sent: dict[str, float] = {}


class Unprocessable(ValueError):
    """The event is well-formed but cannot apply (e.g. unknown attempt or contest)."""


def _result_id(*parts: object) -> str:
    return str(uuid.uuid5(RESULT_NAMESPACE, "/".join(str(p) for p in parts)))


async def _emit_answer_recorded(value: dict[str, Any], status: rules.SaveStatus) -> None:
    await emit(
        grading_results_topic,
        Record.ANSWER_RECORDED,
        value["attempt_id"],
        {
            "event_id": value["event_id"],
            "attempt_id": value["attempt_id"],
            "contest_id": value["contest_id"],
            "question_id": value["question_id"],
            "client_seq": value["client_seq"],
            "status": status.value,
            "selected_options": value["selected_options"],
            "text": value["text"],
            "language": value["language"],
            "server_ts": value["server_ts"],
        },
    )


async def request_code_runs(state: AttemptState, questions: dict[str, rules.QuestionKey]) -> None:
    """Ask the code runner to grade every saved program that has no result yet; the
    request id makes a repeated request the same request."""
    for question, answer in rules.code_runs_needed(state, questions):
        await emit(
            code_runs_topic,
            Record.CODE_EXECUTION_REQUESTED,
            state.attempt_id,
            {
                "event_id": rules.code_request_id(
                    state.attempt_id, question.question_id, answer.event_id, question.revision
                ),
                "attempt_id": state.attempt_id,
                "contest_id": state.contest_id,
                "client_ts": None,
                "server_ts": server_now(),
                "purpose": "grade",
                "question_id": question.question_id,
                "answer_event_id": answer.event_id,
                "language": answer.language or "",
                "source": answer.text or "",
                "custom_input": None,
            },
        )


async def emit_grades(state: AttemptState) -> None:
    """Grade a finished attempt and emit every response and the total. Ids depend only
    on the attempt, how it finished and the grader, so re-emitting is harmless."""
    contest = definitions.contests.get(state.contest_id)
    if contest is None:
        raise Unprocessable(f"contest {state.contest_id} is not defined")
    questions = {q.question_id: q.grading_key() for q in definitions.questions_of(contest)}
    await request_code_runs(state, questions)
    grade = rules.grade_attempt(state, questions)
    graded_at = state.graded_at_by_basis.setdefault(grade.basis, server_now())
    for response in grade.responses:
        answer = response.answer
        await emit(
            grading_results_topic,
            Record.RESPONSE_GRADED,
            state.attempt_id,
            {
                "event_id": _result_id(
                    state.attempt_id, response.question_id, grade.basis, response.basis
                ),
                "attempt_id": state.attempt_id,
                "contest_id": state.contest_id,
                "question_id": response.question_id,
                "verdict": str(response.verdict),
                "score": response.score,
                "max_score": response.max_score,
                "client_seq": answer.client_seq if answer else None,
                "selected_options": answer.selected_options if answer else None,
                "text": answer.text if answer else None,
                "saved_at": answer.saved_at if answer else None,
                "grader_version": grade.grader_version,
                "graded_at": graded_at,
            },
        )
    scored = {
        "event_id": _result_id(state.attempt_id, "scored", grade.basis),
        "attempt_id": state.attempt_id,
        "contest_id": state.contest_id,
        "participant_email": state.participant_email,
        "participant_name": state.participant_name,
        "status": state.status.value,
        "started_at": state.started_at,
        "deadline": state.deadline,
        "finished_at": state.finished_at,
        "total_score": grade.total_score,
        "max_score": grade.max_score,
        "score_changed_at": grade.score_changed_at,
        "counted_saves": state.counted_saves,
        "late_saves": state.late_saves,
        "grader_version": grade.grader_version,
        "graded_at": graded_at,
    }
    await emit(grading_results_topic, Record.ATTEMPT_SCORED, state.attempt_id, scored)
    # The leaderboard reads totals grouped by contest, from a topic keyed by contest.
    await emit(scores_by_contest_topic, Record.ATTEMPT_SCORED, state.contest_id, scored)


async def emit_clock(state: AttemptState) -> None:
    """Tell ingest the attempt's server clock; sent on every start, extension and finish
    (redeliveries included) so a lost send is repaired by the next one."""
    await emit(
        attempt_clock_topic,
        Record.ATTEMPT_CLOCK,
        state.attempt_id,
        {
            "attempt_id": state.attempt_id,
            "contest_id": state.contest_id,
            "started_at": state.started_at,
            "deadline": state.deadline,
            "status": state.status.value,
            "finished_at": state.finished_at,
            "extension_seconds": state.extension_seconds,
        },
    )


CLOCK_EVENTS = frozenset(
    {
        Record.ATTEMPT_STARTED,
        Record.ATTEMPT_SUBMITTED,
        Record.ATTEMPT_EXPIRED,
        Record.TIME_EXTENDED,
        Record.ATTEMPT_INVALIDATED,
    }
)


def check_save(state: AttemptState, value: dict[str, Any]) -> None:
    """The checks ingest makes on a save, made again on one that reached the topic
    another way: it is dead-lettered rather than stored as an answer."""
    if value["contest_id"] != state.contest_id:
        raise Unprocessable(f"the save is for contest {value['contest_id']}, not the attempt's")
    contest = definitions.contests.get(state.contest_id)
    question = definitions.questions.get(value["question_id"])
    if contest is None or question is None or question.question_id not in contest.question_ids:
        raise Unprocessable(f"question {value['question_id']} is not part of this contest")
    if not 0 <= value["client_seq"] <= MAX_CLIENT_SEQ:
        raise Unprocessable(f"client_seq {value['client_seq']} is outside 0..{MAX_CLIENT_SEQ}")
    text = value["text"]
    if text is not None and len(text.encode()) > settings.max_answer_bytes:
        raise Unprocessable(f"text is over the {settings.max_answer_bytes}-byte limit")
    problem = answer_problem(
        question.kind,
        len(question.options),
        question.languages,
        value["selected_options"],
        text,
        value["language"],
    )
    if problem:
        field, why = problem
        raise Unprocessable(f"{field}: {why}")


async def apply_event(
    name: str, value: dict[str, Any], current: AttemptState | None
) -> AttemptState:
    """Apply one decoded attempt event and emit what it produces; returns the new state."""
    grace = settings.grace_seconds
    if name == Record.ATTEMPT_STARTED:
        contest = await definitions.wait_for_contest(value["contest_id"], DEFINITION_WAIT_SECONDS)
        if contest is None:
            raise Unprocessable(f"contest {value['contest_id']} is not defined")
        return rules.start_attempt(
            current,
            attempt_id=value["attempt_id"],
            contest_id=value["contest_id"],
            participant_email=value["participant_email"],
            participant_name=value["participant_name"],
            server_ts=value["server_ts"],
            contest=contest.timing,
        )
    if current is None:
        raise Unprocessable(f"attempt {value['attempt_id']} was never started")
    state = current
    if name == Record.ANSWER_SAVED:
        check_save(state, value)
        answer = SavedAnswer(
            event_id=value["event_id"],
            client_seq=value["client_seq"],
            saved_at=value["server_ts"],
            selected_options=value["selected_options"],
            text=value["text"],
            language=value["language"],
        )
        status = rules.record_save(state, value["question_id"], answer, grace)
        await _emit_answer_recorded(value, status)
    elif name == Record.ATTEMPT_SUBMITTED:
        rules.submit_attempt(state, value["server_ts"], grace)
        await emit_grades(state)
    elif name == Record.ATTEMPT_EXPIRED:
        rules.expire_attempt(state, value["server_ts"], grace)
        if state.is_finished:
            await emit_grades(state)
    elif name == Record.TIME_EXTENDED:
        rules.extend_attempt(state, value["event_id"], value["extra_seconds"])
    elif name == Record.ATTEMPT_INVALIDATED:
        rules.invalidate_attempt(state, value["reason"], value["server_ts"])
        await emit_grades(state)
    elif name == Record.MANUAL_GRADE_GIVEN:
        manual = rules.ManualGrade(
            event_id=value["event_id"],
            score=value["score"],
            comment=value["comment"],
            grader=value["grader"],
            graded_at=value["server_ts"],
        )
        rules.record_manual_grade(state, value["question_id"], manual)
        if state.is_finished:
            await emit_grades(state)
    elif name == Record.REGRADE_REQUESTED:
        question_id, revision = value["question_id"], value["revision"]
        if question_id and not await definitions.wait_for_revision(
            question_id, revision, DEFINITION_WAIT_SECONDS * 5
        ):
            raise Unprocessable(f"question {question_id} revision {revision} is not defined")
        if state.is_finished:
            await emit_grades(state)
    elif name == Record.CODE_EXECUTED:
        result = rules.CodeResult(value["event_id"], value["verdict"], value["score"])
        rules.record_code_result(state, value["question_id"], result)
        if state.is_finished:
            await emit_grades(state)
    else:
        raise Unprocessable(f"{name} does not belong on the attempt events topic")
    return state


@dead_lettering("attempt event")
async def process_message(key: bytes | None, value: bytes | None, topic: str) -> None:
    """Apply one attempt event to its attempt's state."""
    await definitions.ready.wait()
    EVENTS_CONSUMED.labels(topic, "streams").inc()
    decoded = decode(value)
    fields = decoded.value
    if key is None or key.decode() != fields.get("attempt_id"):
        raise Unprocessable("message key is not the event's attempt_id")
    uuid.UUID(fields["event_id"])  # every id downstream is a UUID: refuse others here
    stored = attempts_table.get(key)
    current = rules.load_state(stored) if stored else None
    state = await apply_event(decoded.name, fields, current)
    attempts_table[key] = rules.dump_state(state)
    if decoded.name in CLOCK_EVENTS:
        await emit_clock(state)


@app.agent(attempt_events_topic)
async def process_attempt_events(stream: StreamT[bytes]) -> None:
    """Apply every attempt event in partition order, reading back any offsets the
    stream skipped (see streams.gaps) before the event that follows them. The stream
    is iterated at once, not after the definitions load: see streams.app."""
    await events_gap_repair.apply(stream, process_message)


@app.timer(interval=EXPIRY_SWEEP_SECONDS)
async def sweep_expired_attempts() -> None:
    """Send an expiry event for every active attempt past its deadline and grace; the
    agent then finishes it at the deadline, even if the candidate never returns."""
    now = server_now()
    monotonic = time.monotonic()
    active = 0
    for key, stored in list(attempts_table.items()):
        state = rules.load_state(stored)
        if state.is_finished:
            continue
        active += 1
        if is_on_time(now, state.deadline, settings.grace_seconds):
            continue
        sent = _expiry_sent.get(state.attempt_id)
        if sent is not None and monotonic - sent < EXPIRY_RESEND_SECONDS:
            continue
        _expiry_sent[state.attempt_id] = monotonic
        await attempt_events_topic.send(
            key=key,
            value=encode(
                Record.ATTEMPT_EXPIRED,
                {
                    "event_id": _result_id(state.attempt_id, "expired", state.deadline.isoformat()),
                    "attempt_id": state.attempt_id,
                    "contest_id": state.contest_id,
                    "client_ts": None,
                    "server_ts": now,
                    "deadline": state.deadline,
                },
            ),
        )
    ACTIVE_ATTEMPTS.set(active)
