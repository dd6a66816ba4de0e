"""`elevate bench sandbox`: sandboxed runs of `print(1)` beside bare spawns of it.

Both sides run the same command (`python3 -B main.py` with the interpreter the sandbox
uses) at the same parallelism; the sandboxed side goes through the whole runner path
(fresh folder, bwrap, the reaper and its rlimits, output capture and comparison), the
bare side only spawns the process and reads its output. Prints runs/s and p50/p99
latency for both and their ratio, then one JSON line. Figures, never assertions: the
machine is shared and noisy, so compare the two numbers of one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from streams.execution.sandbox import SANDBOX_PATH, SandboxRunner
from streams.rules.execution import CompareMode, RunLimits, RunVerdict, TestCase

PROGRAM = "print(1)\n"
TESTS = [TestCase("bench", b"", b"1")]


ROUNDS = 10


@dataclass
class Figures:
    runs: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def rate(self) -> float:
        return self.runs / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _measure(
    figures: Figures, runs: int, parallel: int, once: Callable[[], Awaitable[bool]]
) -> None:
    """Add `runs` calls of `once`, `parallel` at a time, to `figures`; `once` returns
    whether its run succeeded."""
    remaining = runs

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            ok = await once()
            figures.latencies_ms.append((time.perf_counter() - started) * 1000)
            figures.failures += not ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(parallel)))
    figures.seconds += time.perf_counter() - started
    figures.runs += runs


async def _bench(runs: int, parallel: int, python: str) -> tuple[Figures, Figures]:
    runner = SandboxRunner(workers=parallel)
    limits = RunLimits()

    async def sandboxed() -> bool:
        result = await runner.execute("python3", PROGRAM, TESTS, limits, CompareMode.TRIM)
        return result.verdict is RunVerdict.AC

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "main.py").write_text(PROGRAM)

        async def bare() -> bool:
            process = await asyncio.create_subprocess_exec(
                python,
                "-B",
                "main.py",
                cwd=folder,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, _ = await process.communicate()
            return process.returncode == 0 and stdout == b"1\n"

        boxed, baseline = Figures(), Figures()
        try:
            # Warm-up: builds the reaper and fills the page cache for both sides.
            await _measure(Figures(), 2 * parallel, parallel, sandboxed)
            await _measure(Figures(), 2 * parallel, parallel, bare)
            # Alternating rounds, so a change in the machine's load hits both sides.
            for round_runs in _split(runs, ROUNDS):
                await _measure(boxed, round_runs, parallel, sandboxed)
                await _measure(baseline, round_runs, parallel, bare)
        finally:
            await runner.aclose()
    return boxed, baseline


def _split(total: int, parts: int) -> list[int]:
    parts = max(1, min(parts, total))
    return [total // parts + (i < total % parts) for i in range(parts)]


def run_sandbox_bench(runs: int, parallel: int) -> int:
    """Print sandboxed vs bare runs/s of `print(1)`; 0 when every sandboxed run was AC."""
    # The interpreter the sandbox runs, so both sides start the same program.
    python = shutil.which("python3", path=SANDBOX_PATH)
    if python is None:
        raise RuntimeError(f"no python3 under {SANDBOX_PATH}")
    boxed, baseline = asyncio.run(_bench(runs, parallel, os.path.realpath(python)))
    print(f"sandbox bench: {runs} runs of python3 print(1), {parallel} in parallel")
    print(f"{'mode':<10} {'runs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, figures in (("sandboxed", boxed), ("bare", baseline)):
        print(
            f"{name:<10} {figures.rate:>8.1f} {figures.percentile(0.5):>8.1f} "
            f"{figures.percentile(0.99):>8.1f} {figures.failures:>7}"
        )
    ratio = boxed.rate / baseline.rate if baseline.rate else 0.0
    print(f"ratio sandboxed/bare: {ratio:.2f}")
    print(
        json.dumps(
            {
                "runs": runs,
                "parallel": parallel,
                "sandboxed_rps": round(boxed.rate, 1),
                "sandboxed_p50_ms": round(boxed.percentile(0.5), 1),
                "sandboxed_p99_ms": round(boxed.percentile(0.99), 1),
                "bare_rps": round(baseline.rate, 1),
                "bare_p50_ms": round(baseline.percentile(0.5), 1),
                "bare_p99_ms": round(baseline.percentile(0.99), 1),
                "ratio": round(ratio, 3),
                "sandboxed_failures": boxed.failures,
                "median_sandboxed_ms": round(statistics.median(boxed.latencies_ms), 1),
            }
        )
    )
    return 0 if boxed.failures == 0 else 1


if __name__ == "__main__":
    runs_arg = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    parallel_arg = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count() or 1
    sys.exit(run_sandbox_bench(runs_arg, parallel_arg))
