"""Coding-question rules: output comparison, verdicts from how a run ended, scoring with
weights and subtasks, and the safe preview of program output."""

from __future__ import annotations

import signal

import pytest

from streams.rules.execution import (
    CompareMode,
    ProcessOutcome,
    RunLimits,
    RunVerdict,
    TestCase,
    TestRun,
    judge_outcome,
    outputs_match,
    overall_verdict,
    safe_preview,
    score_tests,
)


@pytest.mark.parametrize(
    ("expected", "actual", "mode", "match"),
    [
        (b"1 2", b"1 2 \n", CompareMode.TRIM, True),
        (b"1 2", b"1 2 \n", CompareMode.EXACT, False),
        (b"1\n", b"1\r\n", CompareMode.TRIM, True),
        (b"1\n2\n", b"1\r\n2\r\n\r\n\n", CompareMode.TRIM, True),
        (b"1\n", b"\n1\n", CompareMode.TRIM, False),  # a leading blank line counts
        (b"1 2", b"1  2", CompareMode.TRIM, False),  # inner spacing counts
        (b"a b", b"a b", CompareMode.EXACT, True),
        (b"1 2\n3", b"  1\n2   3  \n\n", CompareMode.TOKENS, True),
        (b"1 2 3", b"1 2", CompareMode.TOKENS, False),
        (b"", b" \n\t", CompareMode.TOKENS, True),
        (b"0.333333", b"0.3333334", CompareMode.FLOAT, True),  # within abs 1e-6
        (b"0.5", b"0.50001", CompareMode.FLOAT, False),
        (b"1000000", b"1000000.5", CompareMode.FLOAT, True),  # within rel 1e-6
        (b"1e3 yes", b"1000.0000001 yes", CompareMode.FLOAT, True),
        (b"1.0 yes", b"1.0 no", CompareMode.FLOAT, False),  # words must be equal
        (b"1.0", b"nan", CompareMode.FLOAT, False),
        (b"inf", b"inf", CompareMode.FLOAT, True),  # equal as words
        (b"1.0 2.0", b"1.0", CompareMode.FLOAT, False),
        (b"\xff\xfe", b"\xff\xfe\n", CompareMode.TRIM, True),  # not UTF-8: no crash
        (b"\xff", b"\xfe", CompareMode.FLOAT, False),
    ],
)
def test_outputs_match(expected: bytes, actual: bytes, mode: CompareMode, match: bool) -> None:
    assert outputs_match(expected, actual, mode) is match


def test_float_tolerances_are_configurable() -> None:
    assert outputs_match(b"1.0", b"1.05", CompareMode.FLOAT, abs_tol=0.1, rel_tol=0)
    assert outputs_match(b"100", b"101", CompareMode.FLOAT, abs_tol=0, rel_tol=0.01)
    assert not outputs_match(b"100", b"102", CompareMode.FLOAT, abs_tol=0, rel_tol=0.01)


def test_trim_is_the_default_and_modes_may_be_given_by_name() -> None:
    assert outputs_match(b"x", b"x  \r\n\r\n")
    assert not outputs_match(b"x", b"x\n", "exact")  # type: ignore[arg-type]


LIMITS = RunLimits(cpu_seconds=2, memory_mb=128)


def ended(**changes: object) -> ProcessOutcome:
    fields: dict[str, object] = {"exit_code": 0, "signal": None, "cpu_ms": 10, "memory_kb": 1000}
    fields.update(changes)
    return ProcessOutcome(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (ended(), None),
        (ended(exit_code=1), RunVerdict.RE),
        (ended(exit_code=None, signal=signal.SIGSEGV), RunVerdict.RE),
        (ended(cpu_ms=2001), RunVerdict.TLE),
        (ended(exit_code=None, signal=signal.SIGXCPU), RunVerdict.TLE),
        (ended(exit_code=None, signal=signal.SIGKILL, killed_for_time=True), RunVerdict.TLE),
        (ended(exit_code=None, signal=signal.SIGKILL, killed_for_output=True), RunVerdict.OLE),
        (ended(exit_code=None, signal=signal.SIGXFSZ), RunVerdict.OLE),
        (ended(exit_code=1, file_too_large=True), RunVerdict.OLE),
        (ended(exit_code=1, out_of_memory=True), RunVerdict.MLE),
        (ended(exit_code=None, signal=signal.SIGKILL), RunVerdict.MLE),  # the OOM killer
        # A crash at the address-space limit is a failed allocation; far below it is not.
        (
            ended(exit_code=None, signal=signal.SIGSEGV, memory_kb=127_000, memory_limit_kb=131072),
            RunVerdict.MLE,
        ),
        (
            ended(exit_code=None, signal=signal.SIGSEGV, memory_kb=9_000, memory_limit_kb=131072),
            RunVerdict.RE,
        ),
        # Output over the cap wins over the time it took to produce it.
        (ended(cpu_ms=5000, killed_for_output=True), RunVerdict.OLE),
    ],
)
def test_judge_outcome(outcome: ProcessOutcome, verdict: RunVerdict | None) -> None:
    assert judge_outcome(outcome, LIMITS) is verdict


def run(test_id: str, verdict: RunVerdict) -> TestRun:
    return TestRun(test_id, verdict, time_ms=1, memory_kb=1)


def test_overall_verdict_is_the_first_failure_and_ie_wins() -> None:
    assert overall_verdict([run("1", RunVerdict.AC), run("2", RunVerdict.AC)]) is RunVerdict.AC
    assert (
        overall_verdict(
            [run("1", RunVerdict.AC), run("2", RunVerdict.TLE), run("3", RunVerdict.WA)]
        )
        is RunVerdict.TLE
    )
    assert overall_verdict([run("1", RunVerdict.WA), run("2", RunVerdict.IE)]) is RunVerdict.IE
    assert overall_verdict([]) is RunVerdict.AC


TESTS = [
    TestCase("s1", b"", b"", weight=1),
    TestCase("s2", b"", b"", weight=3),
    TestCase("a1", b"", b"", weight=2, subtask="A"),
    TestCase("a2", b"", b"", weight=2, subtask="A"),
    TestCase("b1", b"", b"", weight=2, subtask="B"),
]


def verdicts(*failing: str) -> dict[str, RunVerdict]:
    return {t.test_id: RunVerdict.WA if t.test_id in failing else RunVerdict.AC for t in TESTS}


def test_all_accepted_earns_max_marks() -> None:
    assert score_tests(TESTS, verdicts(), max_marks=50) == 50


def test_standalone_tests_score_their_weight() -> None:
    # Total weight 10; losing s2 (3) keeps 7/10.
    assert score_tests(TESTS, verdicts("s2"), max_marks=50) == 35


def test_a_subtask_scores_only_when_all_its_tests_pass() -> None:
    # Losing a2 loses all of subtask A (4 of 10), though a1 passed.
    assert score_tests(TESTS, verdicts("a2"), max_marks=50) == 30
    assert score_tests(TESTS, verdicts("a1", "a2", "b1"), max_marks=50) == 20


def test_missing_verdicts_count_as_failed_and_nothing_passed_is_zero() -> None:
    assert score_tests(TESTS, {"s1": RunVerdict.AC}, max_marks=10) == 1
    assert score_tests(TESTS, {}, max_marks=10) == 0
    assert score_tests([], {}, max_marks=10) == 0


def test_scores_are_rounded() -> None:
    tests = [TestCase(str(i), b"", b"") for i in range(3)]
    assert score_tests(tests, {"0": RunVerdict.AC}, max_marks=1) == 0.333333


def test_safe_preview_of_invalid_utf8_emoji_and_controls() -> None:
    data = b"ok \xff " + "😀".encode() + b" \x1b[31mred\x00\r\n"
    text = safe_preview(data, 1000)
    text.encode("utf-8")  # valid text: no lone surrogates
    assert text == "ok \ufffd 😀 \ufffd[31mred\ufffd\n"


def test_safe_preview_caps_and_marks_truncation() -> None:
    data = "😀".encode() * 10  # 4 bytes each
    text = safe_preview(data, 10)
    # Two whole emoji fit; the half of the third is dropped, not shown as garbage.
    assert text.startswith("😀😀\n")
    assert "10 of 40 bytes" in text
    assert safe_preview(b"short", 10) == "short"
