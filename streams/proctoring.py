"""The proctoring agent: heartbeats, blur and focus per attempt, turned into a live
connection status and a risk score on the proctoring-flags topic."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import msgspec
from faust.types import StreamT

from avro_schemas.codec import decode
from avro_schemas.records import Record
from avro_schemas.topics import HEARTBEATS, PROCTORING_FLAGS
from elevate.observability import EVENTS_CONSUMED
from streams.app import app, dead_lettering, emit, faust_topic, gap_repair, settings
from streams.rules.proctoring import (
    Connection,
    ProctoringPolicy,
    ProctoringState,
    connection,
    record_signal,
    risk,
)
from streams.rules.timing import server_now

log = logging.getLogger(__name__)

FLAG_NAMESPACE = uuid.UUID("c1d7e9a3-5b2f-4c8d-9e0a-6f3b1d2c4e58")
# Attempts silent for longer than this are no longer swept (their contest is long over).
SWEEP_HORIZON = timedelta(hours=6)

heartbeats_topic = faust_topic(HEARTBEATS)
flags_topic = faust_topic(PROCTORING_FLAGS)
policy = ProctoringPolicy(
    interval_seconds=settings.heartbeat_interval_seconds,
    missed_after=settings.heartbeats_missed_for_disconnect,
)
proctoring_table = app.Table(
    "proctoring", default=None, key_type=bytes, value_type=bytes, partitions=HEARTBEATS.partitions
)
beats_gap_repair = gap_repair("proctoring-reached", heartbeats_topic)
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ProctoringState)
# What was last reported per attempt, so unchanged pictures are not sent again.
_reported: dict[str, tuple[str, int, int, int]] = {}


def flag_record(state: ProctoringState) -> dict[str, Any]:
    now = server_now()
    live = connection(state, now, policy)
    assessed = risk(state, now)
    picture = (live.value, assessed.score, state.blur_count, state.disconnections)
    return {
        "event_id": str(
            uuid.uuid5(FLAG_NAMESPACE, f"{state.attempt_id}/{picture}/{len(state.ips)}")
        ),
        "attempt_id": state.attempt_id,
        "contest_id": state.contest_id,
        "connection": live.value,
        "risk_score": assessed.score,
        "reasons": list(assessed.reasons),
        "blur_count": state.blur_count,
        "blurred_seconds": round(state.blurred_seconds, 3),
        "disconnections": state.disconnections,
        "disconnected_seconds": round(state.disconnected_seconds, 3),
        "ips": state.ips,
        "user_agents": state.user_agents,
        "last_beat_at": state.last_beat_at,
        "server_ts": now,
    }


async def report_if_changed(state: ProctoringState) -> None:
    record = flag_record(state)
    picture = (record["connection"], record["risk_score"], state.blur_count, state.disconnections)
    if _reported.get(state.attempt_id) != picture:
        _reported[state.attempt_id] = picture
        await emit(flags_topic, Record.PROCTORING_FLAG, state.attempt_id, record)


@dead_lettering("heartbeat")
async def apply_beat(key: bytes | None, value: bytes | None, topic: str) -> None:
    """Apply one beat or focus change to its attempt's picture."""
    EVENTS_CONSUMED.labels(topic, "streams").inc()
    decoded = decode(value)
    if decoded.name != Record.HEARTBEAT:
        raise ValueError(f"{decoded.name} does not belong on the heartbeats topic")
    beat = decoded.value
    state_key = beat["attempt_id"].encode()
    if key != state_key:
        raise ValueError("message key is not the event's attempt_id")
    stored = proctoring_table.get(state_key)
    state = (
        _decoder.decode(stored)
        if stored
        else ProctoringState(attempt_id=beat["attempt_id"], contest_id=beat["contest_id"])
    )
    record_signal(
        state,
        event_id=beat["event_id"],
        kind=beat["kind"],
        at=beat["server_ts"],
        ip=beat["ip"],
        user_agent=beat["user_agent"],
        policy=policy,
    )
    proctoring_table[state_key] = _encoder.encode(state)
    await report_if_changed(state)


@app.agent(heartbeats_topic)
async def watch_heartbeats(stream: StreamT[bytes]) -> None:
    """Apply every beat and focus change, none skipped (see streams.gaps)."""
    await beats_gap_repair.apply(stream, apply_beat)


@app.timer(interval=settings.heartbeat_interval_seconds)
async def flag_disconnections() -> None:
    """An attempt that stopped beating is reported disconnected without waiting for a
    next beat that may never come."""
    now = server_now()
    for _, stored in list(proctoring_table.items()):
        state = _decoder.decode(stored)
        if state.last_beat_at is None or now - state.last_beat_at > SWEEP_HORIZON:
            continue
        if connection(state, now, policy) is Connection.DISCONNECTED:
            await report_if_changed(state)
