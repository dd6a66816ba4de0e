"""The local code runner: untrusted programs under bubblewrap, with rlimits.

Every process runs in `bwrap` with all namespaces unshared (no network: only a loopback
that is down), the host's /usr read-only, a few /etc entries the toolchains need, a
private size-capped tmpfs for /tmp and /dev/shm, everything else read-only, and the
submission's folder at /box (writable while compiling, read-only while running tests).

Limits:
- CPU time, address space, processes, file size and stack are rlimits, set by a tiny
  reaper (C, built once per runner) that is the sandbox's PID 1 and the program's
  parent. It waits for the program and reports its exit status, CPU time and peak
  memory (wait4 rusage) on a pipe the program cannot reach. Measuring from outside
  would see only bwrap: bwrap's own PID 1 does not pass its children's rusage on.
- Output: stdout and stderr are read with a cap; past it the process group is killed.
- Wall clock: past it the process group is killed; bwrap's --die-with-parent and the
  PID namespace take every process of the sandbox down with it.
- When this process runs as root, sandboxes run as `sandbox_uid` (via setpriv): the
  kernel does not enforce RLIMIT_NPROC for root, so a fork bomb would not be contained.
  Each sandbox has its own user namespace, so the process limit counts per sandbox.

Nothing here filters system calls (no seccomp): isolation rests on namespaces, an
unprivileged user and rlimits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.execution.languages import Language, get_language
from streams.rules.execution import (
    DEFAULT_COMPILE_LIMITS,
    KIB,
    MIB,
    CompareMode,
    ExecutionResult,
    ProcessOutcome,
    RunLimits,
    RunVerdict,
    TestCase,
    TestRun,
    judge_outcome,
    output_verdict,
    overall_verdict,
)

log = logging.getLogger(__name__)

DEFAULT_SANDBOX_UID = 65534  # nobody
BOX = "/box"
REAPER_PATH = "/.reaper"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
# Size of each private tmpfs (/tmp, /dev/shm): memory, not disk, and bounded.
TMPFS_BYTES = 64 * MIB
# stderr kept per run (the cap that kills is the output limit); the tail is kept apart
# so an error message at the end of a long stderr is still recognised.
STDERR_KEEP_BYTES = 64 * KIB
TAIL_BYTES = 4 * KIB
COMPILE_OUTPUT_CHARS = 64 * KIB
# After the sandbox's main process exits, how long its pipes may take to close.
PIPE_CLOSE_SECONDS = 2.0
# Host paths under /etc the toolchains read: the dynamic linker's cache, alternatives
# symlinks, the JDK's configuration (its lib/jvm.cfg links there), the time zone.
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")
TOP_LEVEL_SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# strerror texts of a write refused for size (EFBIG) or a full tmpfs (ENOSPC). Python and
# the JVM ignore SIGXFSZ, so they report the failed write instead of dying by signal.
FILE_LIMIT_MARKERS = (b"File too large", b"No space left on device")

REAPER_SOURCE = r"""
/* PID 1 of the sandbox: applies the rlimits, runs the program as its child, reaps
   every orphan until the program ends, then writes
   "wait-status maxrss-kb utime-us stime-us" to REPORT_FD. Its exit ends the PID
   namespace, which kills whatever the program left behind.
   Usage: reaper REPORT_FD CPU_SOFT CPU_HARD AS NPROC FSIZE STACK -- PROGRAM ARGS...
   (0 leaves a limit as it is).
   The program cannot forge or stop the report: REPORT_FD is closed on exec, the reaper
   is not dumpable (no ptrace, no /proc/1/fd), and as PID 1 it ignores signals from
   inside its namespace. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int set_limit(int resource, const char *soft, const char *hard) {
    struct rlimit value = {strtoull(soft, NULL, 10), strtoull(hard, NULL, 10)};
    if (value.rlim_max == 0) return 0;
    return setrlimit(resource, &value);
}

int main(int argc, char **argv) {
    if (argc < 10 || strcmp(argv[8], "--") != 0) {
        fputs("reaper: bad arguments\n", stderr);
        return 120;
    }
    int report = atoi(argv[1]);
    if (fcntl(report, F_SETFD, FD_CLOEXEC) < 0 || prctl(PR_SET_DUMPABLE, 0) < 0) {
        perror("reaper: set-up");
        return 121;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("reaper: fork");
        return 122;
    }
    if (child == 0) {
        struct rlimit no_core = {0, 0};
        if (set_limit(RLIMIT_CPU, argv[2], argv[3]) || set_limit(RLIMIT_AS, argv[4], argv[4])
            || set_limit(RLIMIT_NPROC, argv[5], argv[5])
            || set_limit(RLIMIT_FSIZE, argv[6], argv[6])
            || set_limit(RLIMIT_STACK, argv[7], argv[7])
            || setrlimit(RLIMIT_CORE, &no_core)) {
            perror("reaper: setrlimit");
            _exit(125);
        }
        execv(argv[9], argv + 9);
        perror("reaper: exec");
        _exit(126);
    }
    int status;
    struct rusage usage;
    for (;;) {
        int reaped_status;
        struct rusage reaped_usage;
        pid_t reaped = wait4(-1, &reaped_status, 0, &reaped_usage);
        if (reaped < 0) {
            if (errno == EINTR) continue;
            perror("reaper: wait4");
            return 123;
        }
        if (reaped == child) {
            status = reaped_status;
            usage = reaped_usage;
            break;
        }
    }
    dprintf(report, "%d %ld %ld %ld\n", status, usage.ru_maxrss,
            (long)usage.ru_utime.tv_sec * 1000000L + (long)usage.ru_utime.tv_usec,
            (long)usage.ru_stime.tv_sec * 1000000L + (long)usage.ru_stime.tv_usec);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}
"""


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program in it): the run proves nothing."""


@dataclass(frozen=True)
class SandboxedRun:
    """How one sandboxed process ended, with what it wrote (capped)."""

    outcome: ProcessOutcome
    stdout: bytes
    stderr: bytes
    wall_ms: int


@dataclass
class _Capture:
    head: bytearray = field(default_factory=bytearray)
    tail: bytes = b""
    total: int = 0


class SandboxRunner:
    """Compiles once per submission, then runs every test in parallel: at most `workers`
    sandboxed processes at a time, across all submissions."""

    def __init__(
        self,
        workers: int | None = None,
        *,
        sandbox_uid: int = DEFAULT_SANDBOX_UID,
        compile_limits: RunLimits = DEFAULT_COMPILE_LIMITS,
        bwrap: str = "bwrap",
    ) -> None:
        self._slots = asyncio.Semaphore(workers or os.cpu_count() or 1)
        self._compile_limits = compile_limits
        self._bwrap = shutil.which(bwrap) or bwrap
        # Only root can (and must) switch to an unprivileged user: see the module doc.
        self._uid: int | None = sandbox_uid if os.geteuid() == 0 else None
        self._user_switch = _user_switch(self._uid)
        self._base: Path | None = None
        self._reaper: Path | None = None
        self._prepare_lock = asyncio.Lock()
        self._programs: dict[str, str] = {}
        self._mounts = _system_mounts()

    async def aclose(self) -> None:
        """Remove the runner's folder (the reaper and any leftover boxes)."""
        if self._base is not None:
            await asyncio.to_thread(shutil.rmtree, self._base, True)
            self._base = None
            self._reaper = None

    async def execute(
        self,
        language: str,
        source: str,
        tests: Sequence[TestCase],
        limits: RunLimits,
        compare: CompareMode = CompareMode.TRIM,
    ) -> ExecutionResult:
        """Build `source` once, run it on every test and judge each run.

        Raises UnsupportedLanguageError for an unknown language; a failure of the
        sandbox itself is logged and gives IE.
        """
        lang = get_language(language)
        try:
            box = await self._new_box(lang, source)
        except (SandboxError, OSError):
            log.exception("sandbox set-up failed")
            return _all_internal_error(tests)
        try:
            compile_output = ""
            compile_argv = lang.compile_argv(limits)
            if compile_argv is not None:
                build = await self._run(lang, box, compile_argv, b"", self._compile_limits, True)
                compile_output = _compiler_text(build)
                if build.outcome.killed_for_time:
                    compile_output += "\n[compilation timed out]"
                if judge_outcome(build.outcome, self._compile_limits) is not None:
                    return ExecutionResult(RunVerdict.CE, compile_output, [])
            runs = await asyncio.gather(
                *(self._run_test(lang, box, test, limits, compare) for test in tests)
            )
            return ExecutionResult(overall_verdict(runs), compile_output, list(runs))
        except SandboxError:
            log.exception("sandbox failed while running a %s submission", language)
            return _all_internal_error(tests)
        finally:
            await asyncio.to_thread(shutil.rmtree, box, True)

    async def _run_test(
        self, lang: Language, box: Path, test: TestCase, limits: RunLimits, compare: CompareMode
    ) -> TestRun:
        run = await self._run(lang, box, lang.run_argv(limits), test.input, limits, False)
        outcome = run.outcome
        verdict = judge_outcome(outcome, limits) or output_verdict(
            test.expected, run.stdout, compare
        )
        return TestRun(
            test_id=test.test_id,
            verdict=verdict,
            # A run stopped by the wall clock has no CPU report; its wall time tells more.
            time_ms=run.wall_ms if outcome.killed_for_time else outcome.cpu_ms,
            memory_kb=outcome.memory_kb,
            stdout=run.stdout,
            stderr=run.stderr,
            exit_code=outcome.exit_code,
            signal=outcome.signal,
        )

    async def _new_box(self, lang: Language, source: str) -> Path:
        base = await self._prepare()
        # A mkdtemp and one small file: quicker inline than a trip to a thread.
        return _make_box(base, lang.source_file, source, self._uid)

    async def _prepare(self) -> Path:
        """Create the runner's folder and build the reaper, once."""
        async with self._prepare_lock:
            if self._base is None:
                base = _make_base()
                try:
                    self._reaper = await _build_reaper(base)
                except BaseException:
                    shutil.rmtree(base, ignore_errors=True)
                    raise
                self._base = base
            return self._base

    async def _run(
        self,
        lang: Language,
        box: Path,
        argv: Sequence[str],
        stdin: bytes,
        limits: RunLimits,
        writable: bool,
    ) -> SandboxedRun:
        program = [self._resolve(argv[0]), *argv[1:]]
        async with self._slots:
            report_read, report_write = os.pipe()
            try:
                command = [
                    *self._bwrap_argv(lang, box, writable),
                    *self._reaper_argv(lang, limits, report_write),
                    "--",
                    *program,
                ]
                started = time.monotonic()
                try:
                    process = await self._spawn(command, stdin, report_write)
                finally:
                    os.close(report_write)  # the sandbox holds its own copy
                return await _watch(process, lang, limits, started, report_read)
            finally:
                os.close(report_read)

    async def _spawn(
        self, command: Sequence[str], stdin: bytes, report_fd: int
    ) -> asyncio.subprocess.Process:
        # The input goes in through an in-memory file: no disk, no writer task, and the
        # program may read it at its own pace.
        stdin_fd = os.memfd_create("stdin")
        try:
            _write_all(stdin_fd, stdin)
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            return await asyncio.create_subprocess_exec(
                *self._user_switch,
                *command,
                stdin=stdin_fd,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(report_fd,),
                # Its own process group, so one killpg stops bwrap wherever it is.
                start_new_session=True,
                env={"PATH": SANDBOX_PATH, "LANG": "C.UTF-8"},
            )
        except OSError as exc:
            raise SandboxError(f"cannot start {command[0]}: {exc}") from exc
        finally:
            os.close(stdin_fd)

    def _bwrap_argv(self, lang: Language, box: Path, writable: bool) -> list[str]:
        assert self._reaper is not None
        env = {"PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "HOME": "/tmp", **lang.environment}
        argv = [
            self._bwrap,
            "--unshare-all",  # network, PIDs, IPC, UTS, cgroup, user
            "--unshare-user",  # required (not "try") by --disable-userns
            "--disable-userns",
            "--as-pid-1",  # the reaper is PID 1: see REAPER_SOURCE
            "--die-with-parent",
            "--new-session",  # no TIOCSTI into a terminal
            "--clearenv",
        ]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += self._mounts
        argv += ["--proc", "/proc", "--dev", "/dev"]
        argv += ["--size", str(TMPFS_BYTES), "--tmpfs", "/tmp"]
        argv += ["--size", str(TMPFS_BYTES), "--tmpfs", "/dev/shm"]
        argv += ["--bind" if writable else "--ro-bind", str(box), BOX]
        argv += ["--ro-bind", str(self._reaper), REAPER_PATH]
        # bwrap's own root and /dev are writable tmpfs (memory) unless remounted.
        argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", BOX]
        return argv

    @staticmethod
    def _reaper_argv(lang: Language, limits: RunLimits, report_fd: int) -> list[str]:
        cpu_soft = max(1, math.ceil(limits.cpu_seconds))
        address_space = (limits.memory_mb + lang.address_space_extra_mb) * MIB
        # The stack may grow to the memory limit (deep recursion is a fair solution); the
        # address-space limit still bounds the total.
        stack = limits.memory_mb * MIB
        return [
            REAPER_PATH,
            str(report_fd),
            str(cpu_soft),
            str(cpu_soft + 1),  # SIGXCPU at the soft limit, SIGKILL a second later
            str(address_space),
            str(limits.max_processes),
            str(limits.max_file_bytes),
            str(stack),
        ]

    def _resolve(self, program: str) -> str:
        """An absolute path for a program name, found on the sandbox's PATH."""
        if "/" in program:
            return program
        if program not in self._programs:
            found = shutil.which(program, path=SANDBOX_PATH)
            if found is None:
                raise SandboxError(f"{program} is not installed under {SANDBOX_PATH}")
            # Through /etc/alternatives and friends to the real file, which is under /usr.
            self._programs[program] = os.path.realpath(found)
        return self._programs[program]


async def _watch(
    process: asyncio.subprocess.Process,
    lang: Language,
    limits: RunLimits,
    started: float,
    report_fd: int,
) -> SandboxedRun:
    """Read the sandbox's output and wait for its end, stopping it past the wall-clock
    or output limit, and turn the reaper's report into a ProcessOutcome."""
    killed_for: list[str] = []

    def kill(reason: str) -> None:
        if not killed_for:
            killed_for.append(reason)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    assert process.stdout is not None and process.stderr is not None
    readers = asyncio.gather(
        _capture(process.stdout, limits.max_output_bytes, limits.max_output_bytes, kill),
        _capture(process.stderr, STDERR_KEEP_BYTES, limits.max_output_bytes, kill),
    )
    try:
        try:
            await asyncio.wait_for(process.wait(), timeout=limits.wall_seconds)
        except TimeoutError:
            kill("time")
            await process.wait()
        wall_ms = round((time.monotonic() - started) * 1000)
        try:
            stdout, stderr = await asyncio.wait_for(readers, timeout=PIPE_CLOSE_SECONDS)
        except TimeoutError as exc:
            raise SandboxError("the sandbox's pipes stayed open after it exited") from exc
    finally:
        if process.returncode is None:  # cancelled: leave nothing running
            kill("cancelled")
            await process.wait()
        readers.cancel()

    report = _read_report(report_fd)
    if report is None and not killed_for:
        log.error(
            "sandbox exited %s without a report: %s",
            process.returncode,
            bytes(stderr.head[:2000]).decode("utf-8", "replace"),
        )
        raise SandboxError(f"sandbox exited {process.returncode} without a report")
    status, memory_kb, cpu_us = report if report is not None else (None, 0, 0)
    exit_code = os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None
    if report is None:
        sig = signal.SIGKILL  # we stopped it before the reaper could say anything
    failed = exit_code != 0
    errors = bytes(stderr.head) + stderr.tail
    outcome = ProcessOutcome(
        exit_code=exit_code,
        signal=sig,
        cpu_ms=cpu_us // 1000,
        memory_kb=memory_kb,
        killed_for_time=killed_for[:1] == ["time"],
        killed_for_output=killed_for[:1] == ["output"],
        out_of_memory=failed and lang.reports_out_of_memory(errors),
        file_too_large=failed and any(marker in errors for marker in FILE_LIMIT_MARKERS),
        memory_limit_kb=limits.memory_mb * KIB if lang.memory_is_address_space else None,
    )
    return SandboxedRun(outcome, bytes(stdout.head), bytes(stderr.head), wall_ms)


async def _capture(
    stream: asyncio.StreamReader, keep: int, limit: int, kill: Callable[[str], None]
) -> _Capture:
    """Read a stream to its end, keeping the first `keep` bytes and the last few; past
    `limit` bytes in all, kill the sandbox (and read on to the end that brings, so the
    pipe closes)."""
    capture = _Capture()
    while chunk := await stream.read(64 * KIB):
        if capture.total > limit:
            continue
        capture.total += len(chunk)
        if len(capture.head) < keep:
            capture.head += chunk[: keep - len(capture.head)]
        capture.tail = (capture.tail + chunk)[-TAIL_BYTES:]
        if capture.total > limit:
            kill("output")
    return capture


def _read_report(fd: int) -> tuple[int, int, int] | None:
    """The reaper's line: (wait status, peak memory KB, CPU µs), or None when absent."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 256)
    except BlockingIOError:
        return None
    fields = data.split()
    if len(fields) != 4:
        return None
    status, maxrss, utime, stime = (int(value) for value in fields)
    return status, maxrss, utime + stime


def _make_base() -> Path:
    base = Path(tempfile.mkdtemp(prefix="elevate-sandbox-"))
    # The sandbox user must reach the boxes and the reaper, not list them.
    base.chmod(0o711)
    return base


def _make_box(base: Path, file_name: str, source: str, uid: int | None) -> Path:
    box = Path(tempfile.mkdtemp(prefix="box-", dir=base))
    source_path = box / file_name
    source_path.write_text(source, encoding="utf-8")
    source_path.chmod(0o644)
    if uid is not None:
        # The compiler, running as the sandbox user, writes its output here.
        os.chown(box, uid, uid)
    return box


def _user_switch(uid: int | None) -> list[str]:
    """The command prefix that drops root for the sandbox user. setpriv rather than
    Popen's user=: switching users in Popen rules out vfork, and forking a worker with a
    large heap costs tens of milliseconds per run."""
    if uid is None:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise SandboxError("running as root needs setpriv (util-linux) to drop to a user")
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _compiler_text(run: SandboxedRun) -> str:
    text = (run.stdout + run.stderr).decode("utf-8", errors="replace")
    return text[:COMPILE_OUTPUT_CHARS]


def _all_internal_error(tests: Sequence[TestCase]) -> ExecutionResult:
    runs = [TestRun(test.test_id, RunVerdict.IE, 0, 0) for test in tests]
    return ExecutionResult(RunVerdict.IE, "", runs)


def _system_mounts() -> list[str]:
    """bwrap arguments that show the host's system folders read-only: /usr, the
    top-level folders (symlinks into /usr on a merged-/usr system) and a few /etc
    entries."""
    argv = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LEVEL_SYSTEM_DIRS:
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            argv += ["--ro-bind", str(path), str(path)]
    etc = Path("/etc")
    entries = [etc / name for name in ETC_ENTRIES]
    entries += sorted(etc.glob("java-*"))
    for path in entries:
        if path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    return argv


async def _build_reaper(base: Path) -> Path:
    """Compile the reaper into `base` with the host's C compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise SandboxError("the sandbox needs a C compiler (cc) to build its reaper")
    digest = hashlib.sha256(REAPER_SOURCE.encode()).hexdigest()[:12]
    source = base / f"reaper-{digest}.c"
    binary = base / f"reaper-{digest}"
    source.write_text(REAPER_SOURCE, encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        compiler,
        "-O2",
        "-o",
        str(binary),
        str(source),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise SandboxError(f"building the reaper failed: {output.decode(errors='replace')}")
    binary.chmod(0o755)
    return binary
