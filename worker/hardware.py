"""What this machine's processors can do, read once from /proc/cpuinfo (Linux; elsewhere
nothing is assumed, so the safe float32 path is taken)."""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
CUINIT_FAILED = b"failed call to cuInit"
ABSL_LINE = re.compile(rb"([IWEF])\d{4} ")
ABSL_SEVERITIES = b"IWEF"
ABSL_NOT_SET_UP = b"WARNING: All log messages before absl::InitializeLog()"
# File descriptor 2 is the process's, not a thread's: one redirection at a time.
_STDERR_REDIRECTION = threading.RLock()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bfloat16() -> bool:
    """bfloat16 matrix instructions: mixed_bfloat16 trained 1.5x as fast as float32 at the
    same accuracy here (docs/benchmarks.md); without them it is emulated, and slower."""
    return any(flag in cpu_flags() for flag in NATIVE_BFLOAT16_FLAGS)


def cuda_driver_present() -> bool:
    """libcuda comes with the NVIDIA driver: without it, no GPU can be used here."""
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


@contextmanager
def without_cuinit_noise() -> Iterator[None]:
    """TensorFlow's first look for a GPU logs "failed call to cuInit: ... UNKNOWN ERROR (303)"
    as an error on every machine without an NVIDIA driver, where no GPU is expected; a
    log level high enough to hide it (TF_CPP_MIN_LOG_LEVEL=3) hides every other error too.
    So, only where no driver is installed, that line is left out. Where a driver is, a
    failing cuInit is a real fault and stays."""
    if cuda_driver_present():
        yield
        return
    with _stderr_without(lambda line: CUINIT_FAILED in line):
        yield


@contextmanager
def without_early_tensorflow_logs() -> Iterator[None]:
    """Importing TensorFlow logs (oneDNN is on; no CUDA driver) before absl's logging is set
    up, and those lines ignore TF_CPP_MIN_LOG_LEVEL: here it is honoured for them too."""
    hidden_below = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0)
    with _stderr_without(lambda line: _absl_severity(line) < hidden_below):
        yield


def _absl_severity(line: bytes) -> int:
    """0 (INFO) to 3 (FATAL) for absl's lines, "I1201 12:00:00.000000 ..."; other lines (a
    Python traceback) rank above every level, so none hides them."""
    if line.startswith(ABSL_NOT_SET_UP):
        return ABSL_SEVERITIES.index(b"W")
    found = ABSL_LINE.match(line)
    return ABSL_SEVERITIES.index(found[1]) if found else len(ABSL_SEVERITIES)


@contextmanager
def _stderr_without(dropped: Callable[[bytes], bool]) -> Iterator[None]:
    """The block's stderr (file descriptor 2, where C++ libraries write) goes to a file and
    comes back without the dropped lines. Two threads' blocks that overlapped would leave it
    pointing at one's file when the other ended, and every later line of the process lost (a
    pool process importing early while its task looks for a GPU), so they take turns."""
    with _STDERR_REDIRECTION, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
            os.write(2, b"".join(line for line in lines if not dropped(line)))
