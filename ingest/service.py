"""What each candidate action does: validate, stamp, encode, produce, acknowledge.

Routes hand raw bytes and headers here; every rejection is an `IngestError` carrying
the HTTP status and a message saying what is wrong.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from avro_schemas.codec import encode
from avro_schemas.records import Record
from avro_schemas.topics import ATTEMPT_EVENTS, CODE_RUNS, HEARTBEATS
from elevate.observability import EVENTS_PRODUCED
from elevate.settings import Settings
from ingest.bodies import EMAIL_SHAPE, ExecuteBody, HeartbeatBody, SaveBody, StartBody, SubmitBody
from ingest.clocks import AttemptClocks
from ingest.code_results import CodeResults, shown_to_candidate
from ingest.jobs import JOB_HORIZON, job_lapsed, new_job_id
from ingest.limits import TokenBuckets
from ingest.tokens import AttemptClaims, AttemptTokenReader, TokenError, issue_attempt_token
from streams.definitions import Contest, DefinitionsView, Question
from streams.rules.identity import email_identity
from streams.rules.scoring import QuestionKind, answer_problem
from streams.rules.timing import attempt_deadline, contest_is_open, is_on_time, server_now

log = logging.getLogger(__name__)

# Attempt ids are derived from (contest, email): starting again resumes the same attempt.
ATTEMPT_NAMESPACE = uuid.UUID("6f1c8a52-4d0e-4f57-9a36-0c1f4e2b9d11")
TOKEN_VALID_AFTER_CONTEST = timedelta(hours=1)
# The client's clock is recorded, never trusted, but it must fit the wire's timestamps.
CLIENT_TIME_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
# Browsers send a few hundred characters; anything longer is cut, never stored whole.
MAX_USER_AGENT = 256


def _no_nul(value: str | None, field: str) -> None:
    """Postgres text cannot hold NUL: refuse it here rather than lose the event later."""
    if value is not None and "\x00" in value:
        raise IngestError(422, f"{field} contains a NUL character", field)


def _user_agent(value: str | None) -> str | None:
    return value[:MAX_USER_AGENT].replace("\x00", "") if value else None


_NAMED_FIELD = re.compile(r"field `([^`]+)`")

S = TypeVar("S", bound=msgspec.Struct)


class IngestError(Exception):
    """A rejected request: HTTP status, message, and the body field at fault if any."""

    def __init__(
        self, status: int, detail: str, field: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


@dataclass(frozen=True)
class Accepted:
    """What a 202 says: the event id the broker acknowledged and the server's time."""

    event_id: str
    server_ts: datetime


def attempt_id_for(contest_id: str, email: str) -> str:
    return str(uuid.uuid5(ATTEMPT_NAMESPACE, f"{contest_id}/{email_identity(email)}"))


def _decode_body(body: bytes, struct: type[S], max_bytes: int) -> S:
    if len(body) > max_bytes:
        raise IngestError(413, f"request body is {len(body)} bytes; the limit is {max_bytes}")
    try:
        return msgspec.json.decode(body or b"{}", type=struct)
    except msgspec.ValidationError as exc:
        raise IngestError(422, *_problem(str(exc))) from exc
    except msgspec.DecodeError as exc:
        raise IngestError(422, f"body is not valid JSON: {exc}") from exc


def _problem(message: str) -> tuple[str, str | None]:
    """msgspec's message split into what is wrong and the field it is about, e.g.
    "Expected `int`, got `str` - at `$.client_seq`" or "Object missing required field
    `name`"."""
    detail, _, path = message.partition(" - at `")
    parts = [p for p in path.rstrip("`").removeprefix("$").split(".") if p]
    named = _NAMED_FIELD.search(detail)
    if named:
        parts.append(named.group(1))
    return detail, ".".join(parts) or None


def _refuse_if_waiting(wait: float, whose: str) -> None:
    if wait > 0:
        raise IngestError(
            429,
            f"too many requests for {whose}; retry after the Retry-After seconds",
            retry_after=max(1, math.ceil(wait)),
        )


def _valid_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise IngestError(422, f"{what} {value!r} is not a UUID") from exc


def shown_question(question: Question) -> dict[str, Any]:
    """What a candidate sees of a question: never its answer key or hidden tests; for a
    coding question its languages, limits and sample tests."""
    shown: dict[str, Any] = {
        "question_id": question.question_id,
        "kind": question.kind.value,
        "prompt": question.prompt,
        "options": list(question.options),
        "max_marks": question.max_marks,
    }
    if question.kind is QuestionKind.CODING:
        shown.update(
            languages=list(question.languages),
            time_limit_ms=question.time_limit_ms,
            memory_limit_mb=question.memory_limit_mb,
            sample_tests=[
                {
                    "input": test.input.decode(errors="replace"),
                    "output": test.expected.decode(errors="replace"),
                }
                for test in question.sample_tests
            ],
        )
    return shown


class IngestService:
    """The candidate actions, over one producer and the followed definitions."""

    def __init__(
        self,
        settings: Settings,
        producer: AIOKafkaProducer,
        definitions: DefinitionsView,
        clocks: AttemptClocks | None = None,
        code_results: CodeResults | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.definitions = definitions
        self.clocks = clocks or AttemptClocks()
        self.code_results = code_results or CodeResults()
        self._code_runs_topic = CODE_RUNS.name(settings.topic_prefix)
        self._secret = settings.secret_key.get_secret_value()
        self._tokens = AttemptTokenReader(self._secret)
        self._attempt_limits = (
            TokenBuckets(settings.rate_per_attempt, settings.burst_per_attempt)
            if settings.rate_per_attempt
            else None
        )
        self._ip_limits = (
            TokenBuckets(settings.rate_per_ip, settings.burst_per_ip)
            if settings.rate_per_ip
            else None
        )
        self._attempt_topic = ATTEMPT_EVENTS.name(settings.topic_prefix)
        self._heartbeat_topic = HEARTBEATS.name(settings.topic_prefix)

    async def _produce(self, name: str, record: Record, key: str, value: dict[str, Any]) -> None:
        try:
            await self.producer.send_and_wait(name, encode(record, value), key=key.encode())
            EVENTS_PRODUCED.labels(name).inc()
        except KafkaError as exc:
            log.error("produce to %s failed: %r", name, exc, extra={"attempt_id": key})
            raise IngestError(
                503, "could not store the event; retry with the same request"
            ) from exc

    def limit_address(self, ip: str | None) -> None:
        """429 when this client address sends faster than its limit."""
        if self._ip_limits is not None and ip:
            _refuse_if_waiting(self._ip_limits.take(ip, time.monotonic()), "this address")

    def _authorize(self, attempt_id: str, authorization: str | None) -> AttemptClaims:
        try:
            claims = self._tokens.read(authorization)
        except TokenError as exc:
            raise IngestError(401, str(exc)) from exc
        if claims.attempt_id != attempt_id:
            raise IngestError(403, "this token belongs to another attempt")
        if self._attempt_limits is not None:
            wait = self._attempt_limits.take(attempt_id, time.monotonic())
            _refuse_if_waiting(wait, "this attempt")
        return claims

    def _contest(self, contest_id: str) -> Contest:
        contest = self.definitions.contests.get(contest_id)
        if contest is None:
            raise IngestError(404, f"contest {contest_id} is unknown or not published")
        return contest

    def _envelope(self, claims: AttemptClaims, client_ts: datetime | None) -> dict[str, Any]:
        if client_ts is not None and not CLIENT_TIME_RANGE[0] <= client_ts <= CLIENT_TIME_RANGE[1]:
            raise IngestError(422, "client_ts is out of range (years 2000 to 2100)", "client_ts")
        return {
            "event_id": str(uuid.uuid4()),
            "attempt_id": claims.attempt_id,
            "contest_id": claims.contest_id,
            "client_ts": client_ts,
            "server_ts": server_now(),
        }

    async def start(
        self, contest_id: str, body: bytes, ip: str | None, user_agent: str | None
    ) -> dict[str, Any]:
        """Start (or resume) the candidate's attempt and issue its token."""
        self.limit_address(ip)
        contest = self._contest(_valid_uuid(contest_id, "contest id"))
        request = _decode_body(body, StartBody, self.settings.max_body_bytes)
        if not EMAIL_SHAPE.match(request.email.strip()):
            raise IngestError(422, "email is not a valid address", "email")
        _no_nul(request.email, "email")
        _no_nul(request.name, "name")
        if not request.name.strip():
            raise IngestError(422, "name is blank", "name")
        now = server_now()
        if not contest_is_open(now, contest.start_at, contest.end_at):
            when = "opens" if now < contest.start_at else "closed"
            moment = contest.start_at if now < contest.start_at else contest.end_at
            raise IngestError(409, f"contest {when} at {moment.isoformat()}")
        attempt_id = attempt_id_for(contest.contest_id, request.email)
        clock = self.clocks.get(attempt_id)
        if clock is not None and clock.is_finished:
            finished = clock.finished_at.isoformat() if clock.finished_at else "its deadline"
            raise IngestError(409, f"this attempt is already {clock.status} (at {finished})")
        # A resumed attempt keeps its first start: the clock never restarts.
        started_at = clock.started_at if clock is not None else now
        claims = AttemptClaims(attempt_id, contest.contest_id, started_at)
        event = self._envelope(claims, request.client_ts)
        event.update(
            server_ts=now,
            participant_email=request.email.strip(),
            participant_name=request.name.strip(),
            ip=ip,
            user_agent=_user_agent(user_agent),
        )
        await self._produce(self._attempt_topic, Record.ATTEMPT_STARTED, claims.attempt_id, event)
        deadline = (
            clock.deadline
            if clock is not None
            else attempt_deadline(now, contest.duration_seconds, 0, contest.end_at)
        )
        token = issue_attempt_token(
            self._secret, claims, contest.end_at + TOKEN_VALID_AFTER_CONTEST
        )
        return {
            "attempt_id": claims.attempt_id,
            "contest_id": contest.contest_id,
            "token": token,
            "event_id": event["event_id"],
            "server_time": now.isoformat(),
            "started_at": started_at.isoformat(),
            "deadline": deadline.isoformat(),
            "grace_seconds": self.settings.grace_seconds,
            "questions": [shown_question(q) for q in self.definitions.questions_of(contest)],
        }

    async def save(
        self, attempt_id: str, authorization: str | None, body: bytes, ip: str | None = None
    ) -> Accepted:
        """Autosave one answer; the highest client_seq per question wins downstream."""
        self.limit_address(ip)
        claims = self._authorize(attempt_id, authorization)
        request = _decode_body(body, SaveBody, self.settings.max_body_bytes)
        contest = self._contest(claims.contest_id)
        if request.question_id not in contest.question_ids:
            raise IngestError(
                422, f"question {request.question_id} is not part of this contest", "question_id"
            )
        question = self.definitions.questions.get(request.question_id)
        if question is not None:
            problem = answer_problem(
                question.kind,
                len(question.options),
                question.languages,
                request.selected_options,
                request.text,
                request.language,
            )
            if problem:
                field, why = problem
                raise IngestError(422, why, field)
        _no_nul(request.text, "text")
        if request.text is not None and len(request.text.encode()) > self.settings.max_answer_bytes:
            raise IngestError(
                413, f"answer text is over the {self.settings.max_answer_bytes}-byte limit", "text"
            )
        event = self._envelope(claims, request.client_ts)
        event.update(
            question_id=request.question_id,
            client_seq=request.client_seq,
            selected_options=request.selected_options,
            text=request.text,
            language=request.language,
        )
        await self._produce(self._attempt_topic, Record.ANSWER_SAVED, attempt_id, event)
        return Accepted(event["event_id"], event["server_ts"])

    async def submit(
        self, attempt_id: str, authorization: str | None, body: bytes, ip: str | None = None
    ) -> Accepted:
        """Submit the attempt. One that arrives past its deadline and grace is refused:
        the stream finishes such an attempt at its deadline with what was saved by then."""
        self.limit_address(ip)
        claims = self._authorize(attempt_id, authorization)
        request = _decode_body(body, SubmitBody, self.settings.max_body_bytes)
        clock = self.clocks.get(attempt_id)
        if clock is not None and clock.status == "expired":
            raise IngestError(
                409,
                f"the attempt expired at its deadline {clock.deadline.isoformat()}; the "
                "answers saved by then are kept and graded",
            )
        if (
            clock is not None
            and not clock.is_finished
            and not is_on_time(server_now(), clock.deadline, self.settings.grace_seconds)
        ):
            raise IngestError(
                409,
                f"the deadline passed at {clock.deadline.isoformat()}; the answers saved by "
                "then are kept and will be graded",
            )
        event = self._envelope(claims, request.client_ts)
        await self._produce(self._attempt_topic, Record.ATTEMPT_SUBMITTED, attempt_id, event)
        return Accepted(event["event_id"], event["server_ts"])

    async def execute(
        self, attempt_id: str, authorization: str | None, body: bytes, ip: str | None = None
    ) -> Accepted:
        """Queue a "Run code" on the samples or the candidate's own input; the job id is
        the event id, polled with `code_result`."""
        self.limit_address(ip)
        claims = self._authorize(attempt_id, authorization)
        request = _decode_body(body, ExecuteBody, self.settings.max_body_bytes)
        contest = self._contest(claims.contest_id)
        question = self.definitions.questions.get(request.question_id)
        if question is None or request.question_id not in contest.question_ids:
            raise IngestError(
                422, f"question {request.question_id} is not part of this contest", "question_id"
            )
        if question.kind is not QuestionKind.CODING:
            raise IngestError(422, "only coding questions run code", "question_id")
        if request.language not in question.languages:
            allowed = ", ".join(question.languages)
            raise IngestError(422, f"language must be one of: {allowed}", "language")
        limit = self.settings.max_answer_bytes
        _no_nul(request.source, "source")
        if len(request.source.encode()) > limit:
            raise IngestError(413, f"source is over the {limit}-byte limit", "source")
        custom = request.custom_input.encode() if request.custom_input is not None else None
        if custom is not None and len(custom) > limit:
            raise IngestError(413, f"custom_input is over the {limit}-byte limit", "custom_input")
        event = self._envelope(claims, request.client_ts)
        event.update(
            event_id=new_job_id(event["server_ts"]),
            purpose="run",
            question_id=request.question_id,
            answer_event_id=None,
            language=request.language,
            source=request.source,
            custom_input=custom,
        )
        await self._produce(
            self._code_runs_topic, Record.CODE_EXECUTION_REQUESTED, attempt_id, event
        )
        return Accepted(event["event_id"], event["server_ts"])

    def code_result(
        self, attempt_id: str, authorization: str | None, job_id: str
    ) -> tuple[int, dict[str, Any]]:
        """(200, the result) once the run finished, (202, pending) before."""
        self._authorize(attempt_id, authorization)
        result = self.code_results.get(job_id)
        if result is None:
            if job_lapsed(job_id, server_now()):
                raise IngestError(
                    404,
                    f"no run job {job_id}: it was never issued, or it is over"
                    f" {int(JOB_HORIZON.total_seconds() // 60)} minutes old",
                )
            return 202, {"job_id": job_id, "status": "pending"}
        if result["attempt_id"] != attempt_id:
            raise IngestError(403, "this job belongs to another attempt")
        return 200, shown_to_candidate(result)

    def clock(self, attempt_id: str, authorization: str | None) -> dict[str, Any]:
        """The attempt's server time and deadline, for a countdown that ignores the
        client's own clock."""
        claims = self._authorize(attempt_id, authorization)
        now = server_now()
        clock = self.clocks.get(attempt_id)
        if clock is not None:
            started_at, deadline, status = clock.started_at, clock.deadline, clock.status
            finished_at, extension = clock.finished_at, clock.extension_seconds
        else:  # the stream has not published it yet: the start's own clock
            contest = self._contest(claims.contest_id)
            started_at = claims.started_at or now
            deadline = attempt_deadline(started_at, contest.duration_seconds, 0, contest.end_at)
            status, finished_at, extension = "active", None, 0
        remaining = max(0.0, (deadline - now).total_seconds()) if status == "active" else 0.0
        return {
            "attempt_id": attempt_id,
            "contest_id": claims.contest_id,
            "status": status,
            "server_time": now.isoformat(),
            "started_at": started_at.isoformat(),
            "deadline": deadline.isoformat(),
            "remaining_seconds": round(remaining, 3),
            "grace_seconds": self.settings.grace_seconds,
            "extension_seconds": extension,
            "finished_at": finished_at.isoformat() if finished_at else None,
        }

    async def heartbeat(
        self,
        attempt_id: str,
        authorization: str | None,
        body: bytes,
        ip: str | None,
        user_agent: str | None,
    ) -> Accepted:
        """Record a liveness beat or a focus change."""
        self.limit_address(ip)
        claims = self._authorize(attempt_id, authorization)
        request = _decode_body(body, HeartbeatBody, self.settings.max_body_bytes)
        event = self._envelope(claims, request.client_ts)
        event.update(kind=request.kind, ip=ip, user_agent=_user_agent(user_agent))
        await self._produce(self._heartbeat_topic, Record.HEARTBEAT, attempt_id, event)
        return Accepted(event["event_id"], event["server_ts"])
