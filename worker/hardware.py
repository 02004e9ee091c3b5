"""What this machine's processors can do, read once from /proc/cpuinfo (Linux; elsewhere
nothing is assumed, so the safe float32 path is taken)."""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
CUINIT_FAILED = b"failed call to cuInit"


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
    So, only where no driver is installed, the block's stderr goes to a file and comes back
    without that line. Where a driver is, a failing cuInit is a real fault and stays."""
    if cuda_driver_present():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
            os.write(2, b"".join(line for line in lines if CUINIT_FAILED not in line))
