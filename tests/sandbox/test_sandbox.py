"""The local sandbox with real programs: limits, containment and output handling.

Needs bubblewrap, g++, a JDK and a C compiler; skipped when one is missing.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from streams.execution.sandbox import DEFAULT_SANDBOX_UID, SandboxRunner
from streams.rules.execution import (
    MIB,
    CompareMode,
    RunLimits,
    RunVerdict,
    TestCase,
    safe_preview,
)

pytestmark = [
    pytest.mark.sandbox,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("bwrap", "g++", "javac", "java", "cc")),
        reason="needs bwrap, g++, cc and a JDK",
    ),
]

LIMITS = RunLimits(cpu_seconds=2, wall_seconds=10, memory_mb=128)
DISK_NOISE_BYTES = 64 * MIB


@pytest.fixture(scope="module")
async def runner() -> AsyncIterator[SandboxRunner]:
    sandbox = SandboxRunner(workers=2)
    yield sandbox
    await sandbox.aclose()


def one_test(expected: bytes = b"", stdin: bytes = b"") -> list[TestCase]:
    return [TestCase("t1", stdin, expected)]


def free_bytes() -> dict[str, int]:
    return {path: shutil.disk_usage(path).free for path in ("/", "/tmp")}


def sandbox_processes() -> int:
    """Processes of the sandbox user still alive (or zombies) on the machine."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == DEFAULT_SANDBOX_UID:
                    count += 1
            except FileNotFoundError:
                continue
    return count


async def settled_sandbox_processes(at_most: int, polls: int = 60) -> int:
    """The count of sandbox-user processes once it drops to `at_most`, or after `polls`
    looks 50 ms apart: a sandbox's last processes are reaped just after its run returns."""
    count = sandbox_processes()
    for _ in range(polls):
        if count <= at_most:
            break
        await asyncio.sleep(0.05)
        count = sandbox_processes()
    return count


async def test_compiled_once_then_every_test_judged(
    runner: SandboxRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[Sequence[str]] = []
    spawn = runner._spawn

    async def counting_spawn(
        command: Sequence[str], stdin: bytes, report_fd: int
    ) -> asyncio.subprocess.Process:
        commands.append(command)
        return await spawn(command, stdin, report_fd)

    monkeypatch.setattr(runner, "_spawn", counting_spawn)
    source = textwrap.dedent(
        """
        #include <iostream>
        int main() { long a, b; std::cin >> a >> b; std::cout << a + b << "  \\n"; }
        """
    )
    tests = [
        TestCase("ok", b"1 2\n", b"3"),
        TestCase("wrong", b"2 2\n", b"5"),
        TestCase("ok2", b"40 2\n", b"42\n"),
    ]
    result = await runner.execute("cpp17", source, tests, LIMITS, CompareMode.TRIM)
    assert [t.verdict for t in result.tests] == [RunVerdict.AC, RunVerdict.WA, RunVerdict.AC]
    assert result.verdict is RunVerdict.WA
    assert result.tests[0].stdout == b"3  \n"
    assert result.tests[0].memory_kb > 0
    # One build, then the built program once per test.
    assert sum(any("g++" in part for part in c) for c in commands) == 1
    assert len(commands) == 4


async def test_java_runs(runner: SandboxRunner) -> None:
    source = textwrap.dedent(
        """
        import java.util.Scanner;
        public class Main {
            public static void main(String[] args) {
                Scanner in = new Scanner(System.in);
                System.out.println(in.nextInt() * in.nextInt());
            }
        }
        """
    )
    result = await runner.execute(
        "java17", source, one_test(b"42", b"6 7"), LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.AC, result


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python3", "data = bytearray(512 * 1024 * 1024)\nprint(len(data))\n"),
        (
            "cpp17",
            textwrap.dedent(
                """
                #include <cstdio>
                #include <vector>
                int main() {
                    std::vector<char> data(512u << 20, 1);
                    std::printf("%d\\n", (int)data[12345]);
                }
                """
            ),
        ),
        (
            "java17",
            textwrap.dedent(
                """
                public class Main {
                    public static void main(String[] args) {
                        byte[] data = new byte[512 * 1024 * 1024];
                        System.out.println(data.length);
                    }
                }
                """
            ),
        ),
    ],
)
async def test_allocating_512_mb_under_128_mb_is_mle(
    runner: SandboxRunner, language: str, source: str
) -> None:
    result = await runner.execute(language, source, one_test(b"x"), LIMITS, CompareMode.TRIM)
    assert result.verdict is RunVerdict.MLE, result


async def test_infinite_loop_is_tle_near_the_cpu_limit(runner: SandboxRunner) -> None:
    limits = RunLimits(cpu_seconds=1, wall_seconds=10, memory_mb=128)
    result = await runner.execute(
        "python3", "while True:\n    pass\n", one_test(), limits, CompareMode.TRIM
    )
    [run] = result.tests
    assert run.verdict is RunVerdict.TLE
    # rusage CPU time is sampled; under load it reads somewhat below the kernel's count.
    assert 800 <= run.time_ms <= 2500


async def test_sleeping_past_the_wall_clock_is_tle(runner: SandboxRunner) -> None:
    limits = RunLimits(cpu_seconds=1, wall_seconds=1, memory_mb=128)
    result = await runner.execute(
        "python3", "import time\ntime.sleep(60)\n", one_test(), limits, CompareMode.TRIM
    )
    [run] = result.tests
    assert run.verdict is RunVerdict.TLE
    assert 1000 <= run.time_ms < 3000


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python3", "import os\nwhile True:\n    os.fork()\n"),
        ("cpp17", "#include <unistd.h>\nint main() { for (;;) fork(); }\n"),
    ],
)
async def test_fork_bomb_is_contained(runner: SandboxRunner, language: str, source: str) -> None:
    before = await settled_sandbox_processes(at_most=0)
    limits = RunLimits(cpu_seconds=1, wall_seconds=2, memory_mb=128, max_processes=8)
    result = await runner.execute(language, source, one_test(), limits, CompareMode.TRIM)
    assert result.verdict in (RunVerdict.RE, RunVerdict.TLE), result
    # Nothing of it outlives the run: the PID namespace's end reaps the last ones.
    assert await settled_sandbox_processes(at_most=before) <= before


async def test_no_network_inside(runner: SandboxRunner) -> None:
    source = textwrap.dedent(
        """
        import socket
        for address in [("1.1.1.1", 53), ("127.0.0.1", 22), ("10.0.0.1", 80)]:
            try:
                socket.create_connection(address, timeout=2).close()
                print("connected", address)
            except OSError:
                print("blocked")
        """
    )
    result = await runner.execute(
        "python3", source, one_test(b"blocked\nblocked\nblocked"), LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.AC, result.tests[0].stdout


async def test_program_folder_and_root_are_read_only(runner: SandboxRunner) -> None:
    source = textwrap.dedent(
        """
        for path in ["main.py", "/box/new", "/new", "/usr/new", "/etc/new"]:
            try:
                open(path, "a").close()
                print("wrote", path)
            except OSError:
                print("refused")
        """
    )
    result = await runner.execute(
        "python3", source, one_test(b"refused\n" * 5), LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.AC, result.tests[0].stdout


@pytest.mark.parametrize(
    ("language", "source"),
    [
        (
            "python3",
            "chunk = b'x' * (1 << 20)\n"
            "with open('/tmp/huge', 'wb') as f:\n"
            "    for _ in range(2048):\n"
            "        f.write(chunk)\n",
        ),
        (
            "cpp17",
            textwrap.dedent(
                """
                #include <cstdio>
                #include <vector>
                int main() {
                    std::vector<char> chunk(1 << 20, 'x');
                    FILE* f = std::fopen("/tmp/huge", "wb");
                    for (int i = 0; i < 2048; ++i) std::fwrite(chunk.data(), 1, chunk.size(), f);
                    std::fclose(f);
                }
                """
            ),
        ),
        ("python3", "while True:\n    print('y' * 1000)\n"),
    ],
    ids=["python-file", "cpp-file", "endless-print"],
)
async def test_huge_output_is_ole_and_leaves_the_disk_alone(
    runner: SandboxRunner, language: str, source: str
) -> None:
    before = free_bytes()
    result = await runner.execute(language, source, one_test(), LIMITS, CompareMode.TRIM)
    after = free_bytes()
    [run] = result.tests
    assert run.verdict is RunVerdict.OLE, result
    assert len(run.stdout) <= LIMITS.max_output_bytes
    # The programs try to write 2 GiB. Other work on a shared machine moves free space
    # by megabytes a second, so the bound is loose but still far below what a missing
    # limit would cost.
    for path, free in before.items():
        assert free - after[path] < DISK_NOISE_BYTES, path
    if language == "cpp17":
        assert run.signal == signal.SIGXFSZ


async def test_any_bytes_of_output_are_kept_losslessly(runner: SandboxRunner) -> None:
    source = textwrap.dedent(
        """
        import sys
        out = sys.stdout.buffer
        out.write(b"\\xff\\xfe raw ")
        out.write("😀 emoji\\n".encode())
        out.write(b"z" * 1_000_000 + b"\\n")
        """
    )
    expected = b"\xff\xfe raw " + "😀 emoji\n".encode() + b"z" * 1_000_000 + b"\n"
    limits = RunLimits(cpu_seconds=2, wall_seconds=10, memory_mb=128, max_output_bytes=2 * MIB)
    result = await runner.execute("python3", source, one_test(expected), limits, CompareMode.EXACT)
    [run] = result.tests
    assert run.stdout == expected
    assert run.verdict is RunVerdict.AC
    preview = safe_preview(run.stdout, 200)
    preview.encode("utf-8")
    assert preview.startswith("\ufffd\ufffd raw 😀 emoji\nzzz")
    assert "truncated" in preview


async def test_compile_error_message_keeps_its_quotes(runner: SandboxRunner) -> None:
    result = await runner.execute(
        "cpp17", "int main() { return undeclared_name; }\n", one_test(), LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.CE
    assert result.tests == []
    # g++ quotes names with U+2018/U+2019 under a UTF-8 locale.
    assert "\u2018undeclared_name\u2019 was not declared" in result.compile_output


async def test_runtime_error_and_its_stderr(runner: SandboxRunner) -> None:
    result = await runner.execute(
        "python3", "raise ValueError('bad input')\n", one_test(), LIMITS, CompareMode.TRIM
    )
    [run] = result.tests
    assert run.verdict is RunVerdict.RE
    assert run.exit_code == 1
    assert b"ValueError: bad input" in run.stderr


async def test_environment_is_minimal_and_not_root(runner: SandboxRunner) -> None:
    source = "import os\nprint(sorted(os.environ))\nprint(os.getuid() != 0)\n"
    result = await runner.execute("python3", source, one_test(), LIMITS, CompareMode.TRIM)
    [run] = result.tests
    assert run.stdout.decode().splitlines() == ["['HOME', 'LANG', 'PATH', 'PWD']", "True"]


async def test_the_program_cannot_stop_its_supervisor(runner: SandboxRunner) -> None:
    source = textwrap.dedent(
        """
        import os, signal
        for pid in (os.getppid(), 1):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        print("still judged")
        """
    )
    result = await runner.execute(
        "python3", source, one_test(b"still judged"), LIMITS, CompareMode.TRIM
    )
    assert result.verdict is RunVerdict.AC, result
