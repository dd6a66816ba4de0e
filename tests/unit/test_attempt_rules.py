"""The attempt state machine: saves by sequence, lateness, submit, expiry, grading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.rules import attempt as rules
from streams.rules.attempt import (
    AttemptState,
    AttemptStatus,
    ContestTiming,
    QuestionKey,
    SavedAnswer,
    SaveStatus,
)
from streams.rules.scoring import QuestionKind, Verdict

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
GRACE = 120
Q1 = QuestionKey("q1", QuestionKind.MCQ_SINGLE, 4, frozenset({1}), 4, 1, False)
Q2 = QuestionKey("q2", QuestionKind.MCQ_MULTI, 4, frozenset({0, 2}), 6, 0, True)


def started(duration: int = 600) -> AttemptState:
    state = rules.start_attempt(
        None,
        attempt_id="a",
        contest_id="c",
        participant_email="e@x.org",
        participant_name="E",
        server_ts=T0,
        contest=ContestTiming(duration, T0 + timedelta(hours=2)),
    )
    return state


def save(event: str, seq: int, minute: float, selected: list[int]) -> SavedAnswer:
    return SavedAnswer(event, seq, T0 + timedelta(minutes=minute), selected)


def test_repeated_start_resumes_the_same_clock() -> None:
    state = started()
    again = rules.start_attempt(
        state,
        attempt_id="a",
        contest_id="c",
        participant_email="e@x.org",
        participant_name="E",
        server_ts=T0 + timedelta(minutes=5),
        contest=ContestTiming(600, T0 + timedelta(hours=2)),
    )
    assert again.started_at == T0


def test_highest_sequence_wins_whatever_the_delivery_order() -> None:
    state = started()
    assert rules.record_save(state, "q1", save("e1", 1, 1, [0]), GRACE) is SaveStatus.COUNTED
    assert rules.record_save(state, "q1", save("e3", 3, 2, [1]), GRACE) is SaveStatus.COUNTED
    assert rules.record_save(state, "q1", save("e2", 2, 3, [2]), GRACE) is SaveStatus.SUPERSEDED
    assert state.answers["q1"].selected_options == [1]


def test_the_same_save_twice_is_one_save() -> None:
    state = started()
    first = save("e1", 1, 1, [0])
    rules.record_save(state, "q1", first, GRACE)
    assert rules.record_save(state, "q1", first, GRACE) is SaveStatus.COUNTED
    assert state.counted_saves == 1


def test_late_saves_are_kept_once_and_do_not_count() -> None:
    state = started()
    late = save("late", 9, 12.5, [1])
    assert rules.record_save(state, "q1", late, GRACE) is SaveStatus.LATE
    assert rules.record_save(state, "q1", late, GRACE) is SaveStatus.LATE
    assert state.late_saves == 1 and "q1" not in state.answers


def test_submit_inside_grace_counts_and_after_grace_expires_at_the_deadline() -> None:
    on_time = started()
    assert rules.submit_attempt(on_time, T0 + timedelta(minutes=10, seconds=1), GRACE)
    assert on_time.status is AttemptStatus.SUBMITTED
    too_late = started()
    rules.submit_attempt(too_late, T0 + timedelta(minutes=12, seconds=5), GRACE)
    assert too_late.status is AttemptStatus.EXPIRED
    assert too_late.finished_at == T0 + timedelta(minutes=10)


def test_a_save_past_the_deadline_is_late_even_once_the_attempt_expired() -> None:
    state = started()
    rules.expire_attempt(state, T0 + timedelta(minutes=13), GRACE)
    assert rules.record_save(state, "q1", save("e1", 1, 13, [1]), GRACE) is SaveStatus.LATE
    assert state.late_saves == 1


def test_saves_after_submit_do_not_change_the_answers() -> None:
    state = started()
    rules.record_save(state, "q1", save("e1", 1, 1, [1]), GRACE)
    rules.submit_attempt(state, T0 + timedelta(minutes=2), GRACE)
    assert rules.record_save(state, "q1", save("e2", 2, 3, [0]), GRACE) is SaveStatus.AFTER_SUBMIT
    assert state.answers["q1"].selected_options == [1]


def test_expiry_finishes_at_the_deadline_not_at_the_sweep() -> None:
    state = started()
    assert not rules.expire_attempt(state, T0 + timedelta(minutes=11), GRACE)  # inside grace
    assert rules.expire_attempt(state, T0 + timedelta(minutes=40), GRACE)
    assert state.status is AttemptStatus.EXPIRED
    assert state.finished_at == T0 + timedelta(minutes=10)


def test_an_extension_applies_once_and_moves_the_deadline() -> None:
    state = started()
    assert rules.extend_attempt(state, "x1", 300)
    assert not rules.extend_attempt(state, "x1", 300)
    assert state.deadline == T0 + timedelta(minutes=15)
    assert not rules.expire_attempt(state, T0 + timedelta(minutes=13), GRACE)


def test_grading_totals_and_the_time_of_the_last_scoring_save() -> None:
    state = started()
    rules.record_save(state, "q1", save("e1", 1, 1, [1]), GRACE)  # correct: 4
    rules.record_save(state, "q2", save("e2", 2, 4, [0]), GRACE)  # partial: 3
    rules.submit_attempt(state, T0 + timedelta(minutes=5), GRACE)
    grade = rules.grade_attempt(state, {"q1": Q1, "q2": Q2})
    assert grade.total_score == 7 and grade.max_score == 10
    assert grade.score_changed_at == T0 + timedelta(minutes=4)
    assert [r.verdict for r in grade.responses] == [Verdict.CORRECT, Verdict.PARTIAL]


def test_an_attempt_that_scored_nothing_ranks_by_its_start() -> None:
    state = started()
    grade = rules.grade_attempt(state, {"q1": Q1})
    assert grade.total_score == 0 and grade.score_changed_at == T0
    assert grade.responses[0].verdict is Verdict.UNANSWERED


def test_state_survives_its_serialised_form() -> None:
    state = started()
    rules.record_save(state, "q1", save("e1", 1, 1, [1]), GRACE)
    rules.record_save(state, "q1", save("late", 2, 30, [1]), GRACE)
    assert rules.load_state(rules.dump_state(state)) == state


SUBJECTIVE = QuestionKey("q3", QuestionKind.SUBJECTIVE, 0, frozenset(), 10, 0, False)


def manual(event: str, score: float, minute: float) -> rules.ManualGrade:
    return rules.ManualGrade(event, score, "ok", "grader", T0 + timedelta(minutes=minute))


def test_subjective_waits_for_a_grader_then_counts_within_its_marks() -> None:
    state = started()
    state.answers["q3"] = SavedAnswer("e", 1, T0, text="an essay")
    rules.submit_attempt(state, T0 + timedelta(minutes=5), GRACE)
    pending = rules.grade_attempt(state, {"q3": SUBJECTIVE})
    assert pending.responses[0].verdict is Verdict.PENDING_MANUAL
    assert rules.record_manual_grade(state, "q3", manual("m1", 7.5, 30))
    graded = rules.grade_attempt(state, {"q3": SUBJECTIVE})
    assert graded.responses[0].verdict is Verdict.GRADED and graded.total_score == 7.5
    assert graded.basis != pending.basis
    rules.record_manual_grade(state, "q3", manual("m2", 50, 40))  # clamped to max marks
    assert rules.grade_attempt(state, {"q3": SUBJECTIVE}).total_score == 10


def test_an_older_manual_grade_delivered_late_does_not_win() -> None:
    state = started()
    rules.record_manual_grade(state, "q3", manual("new", 8, 40))
    assert not rules.record_manual_grade(state, "q3", manual("old", 2, 30))
    assert state.manual_grades["q3"].score == 8


def test_the_same_inputs_grade_to_the_same_basis_and_a_key_change_to_another() -> None:
    state = started()
    rules.record_save(state, "q1", save("e1", 1, 1, [0]), GRACE)
    rules.submit_attempt(state, T0 + timedelta(minutes=5), GRACE)
    first = rules.grade_attempt(state, {"q1": Q1})
    assert rules.grade_attempt(state, {"q1": Q1}).basis == first.basis
    corrected = QuestionKey("q1", QuestionKind.MCQ_SINGLE, 4, frozenset({0}), 4, 1, False, 2)
    regraded = rules.grade_attempt(state, {"q1": corrected})
    assert regraded.basis != first.basis
    assert (first.total_score, regraded.total_score) == (0, 4)
    assert regraded.score_changed_at == T0 + timedelta(minutes=1)  # the original save's time


def test_of_two_saves_with_the_same_sequence_the_later_wins() -> None:
    state = started()
    rules.record_save(state, "q1", save("e1", 4, 1, [0]), GRACE)
    assert rules.record_save(state, "q1", save("e2", 4, 2, [1]), GRACE) is SaveStatus.COUNTED
    assert state.answers["q1"].selected_options == [1]
