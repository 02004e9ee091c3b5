"""The heartbeat's readings: psutil's on this machine (no GPU here), and the GPU path through
a stand-in for NVML with fixed readings."""

from __future__ import annotations

from types import SimpleNamespace

import psutil
import pytest

from app.core.telemetry import GpuFigures, Telemetry
from worker.telemetry import TelemetryReader, read_gpus, visible_gpu_indices


def test_the_cpu_path_reads_this_process_and_machine() -> None:
    reader = TelemetryReader()
    first = reader.read()
    assert first.cpu_percent is None  # nothing to compare with yet
    sum(i * i for i in range(200_000))  # some CPU time for the next reading to see
    second = reader.read()
    assert second.cpu_percent is not None and second.cpu_percent >= 0
    assert second.cpu_count == psutil.cpu_count()
    assert 0 < second.process_rss_bytes < second.memory_total_bytes
    assert 0 < second.memory_used_bytes <= second.memory_total_bytes
    assert second.gpus == ()  # no pynvml, no GPU on this machine
    assert Telemetry.from_json(second.as_json()) == second


class FakeNvml:
    """pynvml's functions the reader calls, over fixed readings of two GPUs."""

    devices = {
        0: ("NVIDIA H200", 87, 30 * 2**30, 140 * 2**30),
        1: (b"NVIDIA A100", 5, 2**30, 40 * 2**30),  # older pynvml returns bytes
    }

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802 (pynvml's names)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str | bytes:  # noqa: N802
        return self.devices[handle][0]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self.devices[handle][1], memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        _, _, used, total = self.devices[handle]
        return SimpleNamespace(used=used, total=total, free=total - used)


def test_the_gpu_path_reads_each_visible_gpu() -> None:
    assert read_gpus(FakeNvml(), [1]) == (GpuFigures(1, "NVIDIA A100", 5.0, 2**30, 40 * 2**30),)
    both = read_gpus(FakeNvml(), [0, 1])
    assert [gpu.name for gpu in both] == ["NVIDIA H200", "NVIDIA A100"]
    assert both[0].describe() == "GPU 0 (NVIDIA H200) 87% · 30.0 GiB of 140.0 GiB"


def test_cuda_visible_devices_picks_the_gpus() -> None:
    assert visible_gpu_indices(None, 2) == [0, 1]
    assert visible_gpu_indices("1", 2) == [1]
    assert visible_gpu_indices("0, 1", 4) == [0, 1]
    assert visible_gpu_indices("", 2) == [] == visible_gpu_indices("-1", 2)
    assert visible_gpu_indices("GPU-5f1c", 2) == [0, 1]  # UUIDs: not mapped, all shown
    assert visible_gpu_indices("3", 2) == []  # not on this machine


def test_a_reading_that_fails_is_left_out_and_the_heartbeat_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = TelemetryReader()

    def denied() -> None:
        raise psutil.AccessDenied(pid=reader.process.pid)

    monkeypatch.setattr(reader.process, "memory_info", denied)
    assert reader.read() is None
    monkeypatch.undo()
    assert reader.read() is not None
