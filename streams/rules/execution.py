"""Coding questions: the verdict vocabulary, output comparison and test/subtask scoring.

Both code runners (the local sandbox and Judge0) describe how a process ended with the
same `ProcessOutcome` and turn it into a `RunVerdict` with `judge_outcome`, then compare
the output here, so a submission gets the same verdict whichever backend ran it.

Program output is bytes throughout: a program may print anything (byte 0xFF, half a
UTF-8 sequence), and only `safe_preview` turns it into text, for display.
"""

from __future__ import annotations

import codecs
import math
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from streams.rules.scoring import SCORE_DIGITS

KIB = 1024
MIB = 1024 * KIB


class RunVerdict(StrEnum):
    """The one verdict vocabulary of both code runners."""

    AC = "AC"  # accepted
    WA = "WA"  # wrong answer
    TLE = "TLE"  # time limit exceeded (CPU or wall clock)
    MLE = "MLE"  # memory limit exceeded
    RE = "RE"  # runtime error: non-zero exit or killed by a signal
    CE = "CE"  # compilation error
    OLE = "OLE"  # output limit exceeded (stdout, stderr or a written file)
    IE = "IE"  # internal error of the runner: the run proves nothing, grade again


class CompareMode(StrEnum):
    EXACT = "exact"
    TRIM = "trim"
    TOKENS = "tokens"
    FLOAT = "float"


DEFAULT_COMPARE = CompareMode.TRIM


@dataclass(frozen=True)
class RunLimits:
    """What one process may use. Memory is the address space (a JVM's heap)."""

    cpu_seconds: float = 2.0
    wall_seconds: float = 5.0
    memory_mb: int = 256
    max_output_bytes: int = 1 * MIB
    max_processes: int = 64
    max_file_bytes: int = 8 * MIB


# Compilers get more of everything: g++ on template-heavy code and javac (a JVM with its
# own threads) need far more memory, processes and time than a typical solution.
DEFAULT_COMPILE_LIMITS = RunLimits(
    cpu_seconds=20.0,
    wall_seconds=30.0,
    memory_mb=1024,
    max_output_bytes=256 * KIB,
    max_processes=128,
    max_file_bytes=64 * MIB,
)


@dataclass(frozen=True)
class TestCase:
    """One input and its expected output. Tests sharing a `subtask` score all or nothing."""

    __test__ = False  # a domain class, not a pytest test class despite its name

    test_id: str
    input: bytes
    expected: bytes
    weight: float = 1.0
    subtask: str | None = None


@dataclass(frozen=True)
class TestRun:
    """What one test's run produced. stdout and stderr are capped, otherwise raw."""

    __test__ = False  # a domain class, not a pytest test class despite its name

    test_id: str
    verdict: RunVerdict
    time_ms: int
    memory_kb: int
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    signal: int | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """A whole submission: the overall verdict, the compiler's output and every test."""

    verdict: RunVerdict
    compile_output: str = ""
    tests: list[TestRun] = field(default_factory=list)


@dataclass(frozen=True)
class ProcessOutcome:
    """How a process ended, as a runner observed it, before any output comparison.

    `killed_for_time` / `killed_for_output`: the runner itself stopped the process (wall
    clock, or stdout/stderr over the cap). `out_of_memory`: an allocation failure was
    seen (the language runtime said so, or the platform killed it for memory).
    `file_too_large`: a write was refused for size (EFBIG, a full tmpfs) and the run
    failed; runtimes that ignore SIGXFSZ (Python, the JVM) report it this way.
    `memory_limit_kb` is set when the memory limit is enforced on the whole process
    (an address-space limit), so a crash right at that limit is an allocation failure.
    """

    exit_code: int | None
    signal: int | None
    cpu_ms: int
    memory_kb: int
    killed_for_time: bool = False
    killed_for_output: bool = False
    out_of_memory: bool = False
    file_too_large: bool = False
    memory_limit_kb: int | None = None


# A crash whose peak memory reached this share of an address-space limit is taken for a
# failed allocation: under RLIMIT_AS, malloc fails just before the limit.
MEMORY_NEAR_LIMIT = 0.9


def judge_outcome(outcome: ProcessOutcome, limits: RunLimits) -> RunVerdict | None:
    """The verdict a run earned before its output is looked at; None when it ended cleanly
    (exit code 0, within every limit) and its output decides."""
    if outcome.killed_for_output:
        return RunVerdict.OLE
    if (
        outcome.killed_for_time
        or outcome.cpu_ms > limits.cpu_seconds * 1000
        or outcome.signal == signal.SIGXCPU
    ):
        return RunVerdict.TLE
    if outcome.out_of_memory:
        return RunVerdict.MLE
    if outcome.signal == signal.SIGXFSZ or outcome.file_too_large:
        return RunVerdict.OLE
    if outcome.signal is not None:
        # Nothing else sends SIGKILL to a run we did not stop ourselves: it is the
        # kernel's (or the platform's cgroup) out-of-memory killer.
        if outcome.signal == signal.SIGKILL:
            return RunVerdict.MLE
        if (
            outcome.memory_limit_kb is not None
            and outcome.memory_kb >= MEMORY_NEAR_LIMIT * outcome.memory_limit_kb
        ):
            return RunVerdict.MLE
        return RunVerdict.RE
    if outcome.exit_code not in (0, None):
        return RunVerdict.RE
    return None


def output_verdict(
    expected: bytes,
    actual: bytes,
    mode: CompareMode = DEFAULT_COMPARE,
    abs_tol: float = 1e-6,
    rel_tol: float = 1e-6,
) -> RunVerdict:
    """AC or WA for a run that ended cleanly."""
    if outputs_match(expected, actual, mode, abs_tol=abs_tol, rel_tol=rel_tol):
        return RunVerdict.AC
    return RunVerdict.WA


def outputs_match(
    expected: bytes,
    actual: bytes,
    mode: CompareMode = DEFAULT_COMPARE,
    abs_tol: float = 1e-6,
    rel_tol: float = 1e-6,
) -> bool:
    """Whether a program's output matches the expected output under `mode`.

    - exact: byte for byte.
    - trim: CRLF read as LF; trailing whitespace of each line and trailing blank lines
      ignored. Leading blank lines and inner spacing still count.
    - tokens: the same whitespace-separated tokens.
    - float: tokens, with numbers equal within `abs_tol` or `rel_tol`; other tokens equal.
    """
    mode = CompareMode(mode)  # also accepts the mode's name as stored in a definition
    if mode is CompareMode.EXACT:
        return expected == actual
    if mode is CompareMode.TRIM:
        return _trimmed_lines(expected) == _trimmed_lines(actual)
    if mode is CompareMode.TOKENS:
        return expected.split() == actual.split()
    return _floats_match(expected.split(), actual.split(), abs_tol, rel_tol)


def _trimmed_lines(data: bytes) -> list[bytes]:
    lines = [line.rstrip() for line in data.replace(b"\r\n", b"\n").split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


# A plain decimal number. float() alone would also take "nan", "inf" and "1_000".
_NUMBER = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _floats_match(
    expected: Sequence[bytes], actual: Sequence[bytes], abs_tol: float, rel_tol: float
) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        if want == got:
            continue
        if not (_NUMBER.fullmatch(want) and _NUMBER.fullmatch(got)):
            return False
        if not math.isclose(float(want), float(got), rel_tol=rel_tol, abs_tol=abs_tol):
            return False
    return True


def overall_verdict(runs: Sequence[TestRun]) -> RunVerdict:
    """A submission's verdict: IE when any run proves nothing, else the first failing
    test's verdict, else AC."""
    if any(run.verdict is RunVerdict.IE for run in runs):
        return RunVerdict.IE
    for run in runs:
        if run.verdict is not RunVerdict.AC:
            return run.verdict
    return RunVerdict.AC


def score_tests(
    tests: Sequence[TestCase], verdicts: Mapping[str, RunVerdict], max_marks: float
) -> float:
    """Marks for a submission: a test without a subtask earns its weight when AC; a
    subtask earns the sum of its tests' weights only when all of them are AC. Scaled so
    that all tests AC earns `max_marks`."""
    total = sum(test.weight for test in tests)
    if total <= 0:
        return 0.0
    earned = 0.0
    subtask_weight: dict[str, float] = {}
    subtask_passed: dict[str, bool] = {}
    for test in tests:
        passed = verdicts.get(test.test_id) is RunVerdict.AC
        if test.subtask is None:
            earned += test.weight if passed else 0.0
        else:
            subtask_weight[test.subtask] = subtask_weight.get(test.subtask, 0.0) + test.weight
            subtask_passed[test.subtask] = subtask_passed.get(test.subtask, True) and passed
    earned += sum(w for name, w in subtask_weight.items() if subtask_passed[name])
    return round(max_marks * earned / total, SCORE_DIGITS)


TRUNCATION_MARK = "\n… [output truncated: {shown} of {total} bytes shown]"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def safe_preview(data: bytes, limit: int) -> str:
    """Program output as text that is safe to show a candidate: UTF-8 with invalid bytes
    replaced, control characters (terminal escapes, NUL) replaced except newline and
    tab, at most `limit` bytes of the output, and a note when some was cut off."""
    shown = data[:limit]
    # An incremental decoder drops a multi-byte character cut in half by the limit
    # instead of turning it into a replacement character.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(
        shown, final=len(shown) == len(data)
    )
    text = _CONTROL.sub("\ufffd", text.replace("\r\n", "\n"))
    if len(shown) < len(data):
        text += TRUNCATION_MARK.format(shown=len(shown), total=len(data))
    return text
