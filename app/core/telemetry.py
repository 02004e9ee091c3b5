"""A running experiment's resource readings, as its heartbeat records them
(``Experiment.telemetry``) and pages show them: the training process's CPU use and memory,
the machine's memory, and each GPU the worker uses (utilisation and memory, from NVML).

The worker reads them (``worker/telemetry.py``, psutil and pynvml); this module only holds
the figures and says them in words, so the web never imports either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.memory import gibibytes


@dataclass(frozen=True)
class GpuFigures:
    index: int  # NVML's index, as nvidia-smi numbers the GPU
    name: str
    utilization_percent: float  # of the last sample period, as nvidia-smi reports it
    memory_used_bytes: int
    memory_total_bytes: int

    def describe(self) -> str:
        return (
            f"GPU {self.index} ({self.name}) {self.utilization_percent:.0f}% · "
            f"{gibibytes(self.memory_used_bytes)} of {gibibytes(self.memory_total_bytes)}"
        )


@dataclass(frozen=True)
class Telemetry:
    # The training process's CPU time over the last heartbeat interval, in percent of one
    # core (so up to cores x 100%); None on the first reading, which has nothing to compare.
    cpu_percent: float | None
    cpu_count: int
    process_rss_bytes: int
    memory_used_bytes: int  # the machine's (psutil: total - available)
    memory_total_bytes: int
    gpus: tuple[GpuFigures, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Telemetry | None:
        """None for nothing recorded, or a shape another version wrote."""
        if not data:
            return None
        try:
            gpus = tuple(GpuFigures(**gpu) for gpu in data.get("gpus", ()))
            return cls(**{**data, "gpus": gpus})
        except TypeError:
            return None

    def describe(self) -> list[str]:
        """One line per device: "CPU 180% of 2 cores · process 1.2 GiB · machine 5.0 of
        15.6 GiB", then one per GPU."""
        cpu = "CPU" if self.cpu_percent is None else f"CPU {self.cpu_percent:.0f}%"
        lines = [
            f"{cpu} of {self.cpu_count} cores · process {gibibytes(self.process_rss_bytes)} · "
            f"machine {gibibytes(self.memory_used_bytes)} of "
            f"{gibibytes(self.memory_total_bytes)}"
        ]
        lines.extend(gpu.describe() for gpu in self.gpus)
        return lines


def describe_telemetry(data: dict[str, Any] | None) -> list[str]:
    """The stored JSON in words; no lines when nothing (readable) is recorded."""
    telemetry = Telemetry.from_json(data)
    return [] if telemetry is None else telemetry.describe()
