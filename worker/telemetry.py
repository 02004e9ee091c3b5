"""The heartbeat's resource readings: psutil for the training process and the machine, NVML
(``pynvml``, from the ``nvidia-ml-py`` package) for the GPUs this worker uses, where there
are any. Without pynvml or a GPU the readings simply have no GPUs.

Imports no TensorFlow: the heartbeat thread reads these while training runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import psutil

from app.core.telemetry import GpuFigures, Telemetry

logger = logging.getLogger(__name__)


def visible_gpu_indices(cuda_visible_devices: str | None, count: int) -> list[int]:
    """The NVML indices of the GPUs a process sees: NVML lists every GPU of the machine,
    while one worker per GPU runs with CUDA_VISIBLE_DEVICES naming its own. Unset: all of
    them; "" or "-1": none; UUIDs (not numbers): all, as nothing here maps them."""
    if cuda_visible_devices is None:
        return list(range(count))
    parts = [part.strip() for part in cuda_visible_devices.split(",") if part.strip()]
    if not parts or parts[0] == "-1":
        return []
    if not all(part.isdigit() for part in parts):
        return list(range(count))
    return [int(part) for part in parts if int(part) < count]


def read_gpus(nvml: Any, indices: Sequence[int]) -> tuple[GpuFigures, ...]:
    """Each GPU's utilisation and memory through an initialised NVML binding (pynvml, or a
    stand-in with the same functions in tests)."""
    figures = []
    for index in indices:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        name = nvml.nvmlDeviceGetName(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        figures.append(
            GpuFigures(
                index=index,
                name=name.decode() if isinstance(name, bytes) else str(name),
                utilization_percent=float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                memory_used_bytes=int(memory.used),
                memory_total_bytes=int(memory.total),
            )
        )
    return tuple(figures)


def _nvml() -> Any | None:
    """pynvml, initialised, or None where it is not installed or finds no driver."""
    try:
        import pynvml  # type: ignore[import-not-found]  # optional: the gpu extra
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: pynvml raises its own NVMLError kinds
        return None
    return pynvml


class TelemetryReader:
    """One per run, read each heartbeat: psutil's CPU percentage compares with the previous
    call, so the first reading has none. Never raises: the heartbeat that calls it is what
    keeps the run from being reaped, so a reading that fails is logged and left out."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the baseline the next reading compares with
        self.first = True
        self.nvml = _nvml()
        self.gpu_indices: list[int] = []
        if self.nvml is not None:
            try:
                count = self.nvml.nvmlDeviceGetCount()
            except Exception:
                logger.exception("NVML could not count the GPUs; no GPU figures")
                self.nvml = None
            else:
                visible = os.environ.get("CUDA_VISIBLE_DEVICES")
                self.gpu_indices = visible_gpu_indices(visible, count)

    def read(self) -> Telemetry | None:
        try:
            return self._read()
        except Exception:  # psutil.Error, or an OS that hides a figure
            logger.exception("could not read the CPU and memory figures")
            return None

    def _read(self) -> Telemetry:
        cpu = self.process.cpu_percent(None)
        memory = psutil.virtual_memory()
        gpus: tuple[GpuFigures, ...] = ()
        if self.nvml is not None:
            try:
                gpus = read_gpus(self.nvml, self.gpu_indices)
            except Exception:  # a GPU fell off the bus: say so once, keep the CPU figures
                logger.exception("reading the GPUs through NVML failed; no GPU figures")
                self.nvml = None
        telemetry = Telemetry(
            cpu_percent=None if self.first else cpu,
            cpu_count=psutil.cpu_count() or 1,
            process_rss_bytes=self.process.memory_info().rss,
            memory_used_bytes=memory.total - memory.available,
            memory_total_bytes=memory.total,
            gpus=gpus,
        )
        self.first = False
        return telemetry
