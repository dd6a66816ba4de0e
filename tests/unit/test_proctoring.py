"""Proctoring rules: connection status, blur timing, disconnections, risk with reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.rules.proctoring import (
    Connection,
    ProctoringPolicy,
    ProctoringState,
    connection,
    record_signal,
    risk,
)

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
POLICY = ProctoringPolicy(interval_seconds=5, missed_after=3)


def beat(
    state: ProctoringState,
    n: str,
    second: float,
    kind: str = "heartbeat",
    ip: str = "10.0.0.1",
    agent: str = "Firefox",
) -> bool:
    return record_signal(
        state,
        event_id=n,
        kind=kind,
        at=T0 + timedelta(seconds=second),
        ip=ip,
        user_agent=agent,
        policy=POLICY,
    )


def test_a_quiet_candidate_has_no_risk_and_is_active() -> None:
    state = ProctoringState("a", "c")
    for n in range(10):
        beat(state, str(n), n * 5)
    assert connection(state, T0 + timedelta(seconds=46), POLICY) is Connection.ACTIVE
    assert risk(state, T0 + timedelta(seconds=46)) == risk(state, T0)
    assert risk(state, T0).score == 0 and risk(state, T0).reasons == ()


def test_blur_and_focus_are_counted_and_timed() -> None:
    state = ProctoringState("a", "c")
    beat(state, "1", 0)
    beat(state, "2", 10, "blur")
    assert connection(state, T0 + timedelta(seconds=11), POLICY) is Connection.IDLE
    for second in range(15, 70, 5):  # a background tab keeps beating
        beat(state, f"bg{second}", second)
    beat(state, "3", 70, "focus")
    assert state.blur_count == 1 and state.blurred_seconds == 60
    assessed = risk(state, T0 + timedelta(seconds=70))
    assert assessed.score == 4 + 4
    assert "left the test tab 1 times" in assessed.reasons


def test_a_gap_in_beats_is_a_timed_disconnection() -> None:
    state = ProctoringState("a", "c")
    beat(state, "1", 0)
    assert connection(state, T0 + timedelta(seconds=16), POLICY) is Connection.DISCONNECTED
    beat(state, "2", 120)
    assert state.disconnections == 1 and state.disconnected_seconds == 120
    assert connection(state, T0 + timedelta(seconds=121), POLICY) is Connection.ACTIVE


def test_new_addresses_and_browsers_raise_the_risk_and_repeats_change_nothing() -> None:
    state = ProctoringState("a", "c")
    beat(state, "1", 0)
    beat(state, "2", 5, ip="10.9.9.9", agent="Chrome")
    assert not beat(state, "2", 5, ip="10.9.9.9", agent="Chrome")
    assessed = risk(state, T0 + timedelta(seconds=6))
    assert assessed.score == 15 + 10
    assert "2 IP addresses" in assessed.reasons and "2 browsers" in assessed.reasons


def test_risk_is_capped_at_100() -> None:
    state = ProctoringState("a", "c")
    for n in range(30):
        beat(state, f"b{n}", n * 100, "blur", ip=f"10.0.0.{n}", agent=f"UA{n}")
        beat(state, f"f{n}", n * 100 + 50, "focus")
    assert risk(state, T0 + timedelta(hours=1)).score == 100
