"""What this machine's processors can do, read once from /proc/cpuinfo (Linux; elsewhere
nothing is assumed, so the safe float32 path is taken)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


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
