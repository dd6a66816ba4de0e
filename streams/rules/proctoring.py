"""Proctoring: an attempt's live connection status and risk signals from its heartbeats.

Heartbeats arrive every `interval` seconds while the candidate's page is open; blur and
focus events mark the tab losing and regaining focus. A gap longer than `missed_after`
intervals is a disconnection, timed from the last beat to the next. The risk score adds
up weighted signals, each with the reason an admin reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec

MAX_REMEMBERED = 20  # addresses and user agents kept per attempt


class Connection(StrEnum):
    ACTIVE = "active"  # beating, page focused
    IDLE = "idle"  # beating, page in the background
    DISCONNECTED = "disconnected"  # no beat for `missed_after` intervals


class ProctoringState(msgspec.Struct):
    attempt_id: str
    contest_id: str
    last_beat_at: datetime | None = None
    focused: bool = True
    blur_count: int = 0
    blurred_since: datetime | None = None
    blurred_seconds: float = 0.0
    disconnections: int = 0
    disconnected_seconds: float = 0.0
    ips: list[str] = msgspec.field(default_factory=list)
    user_agents: list[str] = msgspec.field(default_factory=list)
    seen_event_ids: list[str] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class ProctoringPolicy:
    interval_seconds: float = 5.0
    missed_after: int = 3  # beats missed before the attempt counts as disconnected

    @property
    def gap_seconds(self) -> float:
        return self.interval_seconds * self.missed_after


@dataclass(frozen=True)
class Risk:
    score: int  # 0..100
    reasons: tuple[str, ...]


def _remember(values: list[str], value: str | None) -> bool:
    """Add a new value; True when it is a change from what was seen before."""
    if not value or value in values:
        return False
    values.append(value)
    del values[:-MAX_REMEMBERED]
    return len(values) > 1


def record_signal(
    state: ProctoringState,
    *,
    event_id: str,
    kind: str,
    at: datetime,
    ip: str | None,
    user_agent: str | None,
    policy: ProctoringPolicy,
) -> bool:
    """Apply one heartbeat, blur or focus. Returns False for a repeat delivery."""
    if event_id in state.seen_event_ids:
        return False
    state.seen_event_ids.append(event_id)
    del state.seen_event_ids[:-200]
    if state.last_beat_at is not None and at > state.last_beat_at:
        gap = (at - state.last_beat_at).total_seconds()
        if gap > policy.gap_seconds:
            state.disconnections += 1
            state.disconnected_seconds += gap
    if state.last_beat_at is None or at > state.last_beat_at:
        state.last_beat_at = at
    if kind == "blur" and state.focused:
        state.focused = False
        state.blur_count += 1
        state.blurred_since = at
    elif kind == "focus" and not state.focused:
        state.focused = True
        if state.blurred_since is not None and at > state.blurred_since:
            state.blurred_seconds += (at - state.blurred_since).total_seconds()
        state.blurred_since = None
    _remember(state.ips, ip)
    _remember(state.user_agents, user_agent)
    return True


def connection(state: ProctoringState, now: datetime, policy: ProctoringPolicy) -> Connection:
    """The attempt's live status as of `now`."""
    if (
        state.last_beat_at is None
        or (now - state.last_beat_at).total_seconds() > policy.gap_seconds
    ):
        return Connection.DISCONNECTED
    return Connection.ACTIVE if state.focused else Connection.IDLE


def risk(state: ProctoringState, now: datetime) -> Risk:
    """Weighted signals, capped at 100, each with the reason it counts."""
    blurred = state.blurred_seconds + (
        (now - state.blurred_since).total_seconds() if state.blurred_since else 0.0
    )
    signals = [
        (min(40, 4 * state.blur_count), f"left the test tab {state.blur_count} times"),
        (min(20, int(blurred // 30) * 2), f"{blurred:.0f}s away from the test tab"),
        (min(25, 15 * (len(state.ips) - 1)), f"{len(state.ips)} IP addresses"),
        (min(20, 10 * (len(state.user_agents) - 1)), f"{len(state.user_agents)} browsers"),
        (
            min(15, 5 * state.disconnections),
            f"{state.disconnections} disconnections, {state.disconnected_seconds:.0f}s in all",
        ),
    ]
    counted = [(points, reason) for points, reason in signals if points > 0]
    return Risk(min(100, sum(p for p, _ in counted)), tuple(reason for _, reason in counted))
