"""Memory figures that a running experiment's heartbeat records, read from /proc and the
cgroup files: a handful of small reads, cheap enough for every heartbeat, with no psutil.

"In use" is the container's cgroup (memory.current or memory.usage_in_bytes, page cache
included, as the OOM killer counts it) where a limit is set, otherwise the machine's
MemTotal - MemAvailable. ``scope`` says which, so a message never passes one off as the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

UNLIMITED_BYTES = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63
CGROUP_FILES = (  # (usage, limit): cgroup v2, then v1, as mounted inside a container
    (Path("/sys/fs/cgroup/memory.current"), Path("/sys/fs/cgroup/memory.max")),
    (
        Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    ),
)


@dataclass(frozen=True)
class MemoryFigures:
    process_rss_bytes: int  # the training process now
    process_peak_bytes: int  # its high-water mark (VmHWM)
    used_bytes: int
    total_bytes: int
    scope: Literal["cgroup", "machine"]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> MemoryFigures | None:
        try:
            return cls(**data) if data else None
        except TypeError:  # written by another version
            return None

    def describe(self) -> str:
        return (
            f"{gibibytes(self.used_bytes)} of {gibibytes(self.total_bytes)} in use "
            f"({'the container' if self.scope == 'cgroup' else 'the machine'}) at the last "
            f"heartbeat, {gibibytes(self.process_rss_bytes)} of it the training process "
            f"(peak {gibibytes(self.process_peak_bytes)})"
        )


def gibibytes(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"


def read_memory(proc: Path = Path("/proc")) -> MemoryFigures | None:
    """This process's and its container's (or machine's) memory; None where /proc is absent."""
    try:
        status = _fields(proc / "self" / "status")
        rss, peak = status["VmRSS"], status["VmHWM"]
        used, total, scope = _cgroup() or _machine(proc)
    except (OSError, KeyError, ValueError):
        return None
    return MemoryFigures(rss, peak, used, total, scope)


def _fields(path: Path) -> dict[str, int]:
    """``Name:   123 kB`` lines as bytes."""
    fields: dict[str, int] = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0]) * 1024
    return fields


def _cgroup() -> tuple[int, int, Literal["cgroup"]] | None:
    for usage, limit in CGROUP_FILES:
        try:
            text = limit.read_text().strip()
            if text == "max" or int(text) >= UNLIMITED_BYTES:
                return None
            return int(usage.read_text()), int(text), "cgroup"
        except (OSError, ValueError):
            continue
    return None


def _machine(proc: Path) -> tuple[int, int, Literal["machine"]]:
    meminfo = _fields(proc / "meminfo")
    total = meminfo["MemTotal"]
    return total - meminfo["MemAvailable"], total, "machine"
