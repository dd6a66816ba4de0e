"""The programming languages a coding answer may be written in: one definition each.

Commands are argument templates; `{memory_mb}` is filled from the run's limits so the
Java heap follows the memory limit. Program names are resolved on the machine that
runs them (the sandbox), Judge0 only needs its language id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from streams.rules.execution import RunLimits


class UnsupportedLanguageError(ValueError):
    """A submission names a language no runner knows."""


@dataclass(frozen=True)
class Language:
    """How to build and run a program in one language."""

    id: str
    source_file: str
    # None: interpreted, nothing to build.
    compile_command: tuple[str, ...] | None
    run_command: tuple[str, ...]
    judge0_language_id: int
    judge0_compiler_options: str | None = None
    # What the runtime prints when an allocation fails: the run is then MLE, not RE.
    out_of_memory_markers: tuple[bytes, ...] = ()
    # Address space needed above the memory limit. A JVM reserves far more address
    # space than it touches (thread stacks, class space, code cache); its memory limit
    # is the heap (-Xmx), so the address-space limit only has to stop runaway native use.
    address_space_extra_mb: int = 0
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def memory_is_address_space(self) -> bool:
        """True when the memory limit is the process's whole address space."""
        return self.address_space_extra_mb == 0

    def compile_argv(self, limits: RunLimits) -> tuple[str, ...] | None:
        """The build command for these limits, or None for an interpreted language."""
        if self.compile_command is None:
            return None
        return _fill(self.compile_command, limits)

    def run_argv(self, limits: RunLimits) -> tuple[str, ...]:
        """The command that runs the (built) program under these limits."""
        return _fill(self.run_command, limits)

    def reports_out_of_memory(self, stderr: bytes) -> bool:
        """Whether the runtime's error output says an allocation failed."""
        return any(marker in stderr for marker in self.out_of_memory_markers)


def _fill(template: tuple[str, ...], limits: RunLimits) -> tuple[str, ...]:
    return tuple(part.format(memory_mb=limits.memory_mb) for part in template)


PYTHON3 = Language(
    id="python3",
    source_file="main.py",
    compile_command=None,
    # -B: the program folder is read-only while it runs; no .pyc to write. Not -S: the
    # site module provides the distribution's packages a solution may import.
    run_command=("python3", "-B", "main.py"),
    judge0_language_id=71,  # Python (3.8.1) in Judge0 CE
    out_of_memory_markers=(b"MemoryError",),
)

CPP17 = Language(
    id="cpp17",
    source_file="main.cpp",
    compile_command=(
        "g++",
        "-std=c++17",
        "-O2",
        "-pipe",
        "-fdiagnostics-color=never",
        "-o",
        "main",
        "main.cpp",
    ),
    run_command=("./main",),
    judge0_language_id=54,  # C++ (GCC 9.2.0) in Judge0 CE
    judge0_compiler_options="-std=c++17 -O2",
    out_of_memory_markers=(b"std::bad_alloc",),
)

JAVA17 = Language(
    id="java17",
    source_file="Main.java",
    # The compiler's JVM gets a fixed heap; its flags trade peak speed for start-up.
    compile_command=(
        "javac",
        "-J-Xmx256m",
        "-J-XX:+UseSerialGC",
        "-J-XX:TieredStopAtLevel=1",
        "-J-XX:-UsePerfData",
        "-encoding",
        "UTF-8",
        "Main.java",
    ),
    run_command=(
        "java",
        "-Xmx{memory_mb}m",
        "-Xss64m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        # No hsperfdata file, and smaller reservations so the address-space headroom
        # below is enough.
        "-XX:-UsePerfData",
        "-XX:CompressedClassSpaceSize=64m",
        "-XX:ReservedCodeCacheSize=32m",
        "-cp",
        ".",
        "Main",
    ),
    judge0_language_id=91,  # Java (JDK 17.0.6) in Judge0 CE
    out_of_memory_markers=(b"java.lang.OutOfMemoryError",),
    address_space_extra_mb=1536,
    # glibc gives every JVM thread its own 64 MB malloc arena; two are plenty and keep
    # the address space the JVM needs within the headroom.
    environment={"MALLOC_ARENA_MAX": "2"},
)

LANGUAGES: Mapping[str, Language] = {lang.id: lang for lang in (PYTHON3, CPP17, JAVA17)}


def get_language(language_id: str) -> Language:
    """The definition of `language_id`; UnsupportedLanguageError when there is none."""
    try:
        return LANGUAGES[language_id]
    except KeyError:
        known = ", ".join(sorted(LANGUAGES))
        raise UnsupportedLanguageError(
            f"unsupported language {language_id!r}; known: {known}"
        ) from None
