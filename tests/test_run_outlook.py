"""The experiment page's progress line: the phase in words, the estimate of the time left,
and the heartbeat's resource readings in words (pure functions, no database)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.core.models import Status
from app.core.run_phase import describe_phase, describe_remaining, remaining_seconds
from app.core.telemetry import GpuFigures, Telemetry, describe_telemetry
from app.web.experiment_sections import evaluation_images


@dataclass(frozen=True)
class Row:
    epoch: int
    phase: str = "train"
    seconds: float | None = 10.0
    images_per_second: float | None = 100.0


def phase(status: Status, run_phase: str | None, current: int = 3, total: int = 20) -> str:
    return describe_phase(
        status=status, run_phase=run_phase, current_epoch=current, total_epochs=total
    )


def test_each_phase_in_words() -> None:
    assert phase(Status.queued, None) == "queued"
    assert phase(Status.running, None) == "starting"
    assert phase(Status.running, "loading_data") == "loading data"
    assert phase(Status.running, "train") == "epoch 3/20"
    assert phase(Status.running, "train", current=0) == "epoch 1/20"  # before its first batch
    assert phase(Status.running, "fine_tune", current=7) == "fine-tuning (phase 2) · epoch 7/20"
    assert phase(Status.running, "evaluating") == "evaluating"
    assert phase(Status.succeeded, "evaluating") == "finished"
    assert phase(Status.failed, "train") == "failed"
    assert phase(Status.running, "from a newer version") == "starting"


def remaining(run_phase: str, rows: list[Row], **changes: object) -> float | None:
    arguments = {
        "status": Status.running, "run_phase": run_phase, "epochs": rows, "current_epoch": 3,
        "epoch_progress": 0.5, "total_epochs": 10, "evaluation_images": 1000, **changes,
    }  # fmt: skip
    return remaining_seconds(**arguments)  # type: ignore[arg-type]


def test_the_estimate_is_the_phase_mean_times_the_epochs_left_plus_evaluation() -> None:
    rows = [Row(1, seconds=8.0), Row(2, seconds=12.0)]
    # 10 s an epoch x (10 - 2 - 0.5 epochs) + 1,000 test images at 100 images/s
    assert remaining("train", rows) == pytest.approx(10.0 * 7.5 + 10.0)


def test_the_estimate_reads_only_the_current_phase() -> None:
    rows = [Row(1, seconds=5.0), Row(2, seconds=5.0), Row(3, "fine_tune", 20.0, 50.0)]
    estimate = remaining("fine_tune", rows, current_epoch=4, epoch_progress=0.0)
    assert estimate == pytest.approx(20.0 * (10 - 3) + 1000 / 50.0)


def test_no_estimate_before_the_phase_has_a_finished_epoch() -> None:
    assert remaining("train", []) is None
    assert remaining("fine_tune", [Row(1), Row(2)]) is None  # phase 2's first epoch runs
    assert remaining("loading_data", [Row(1)]) is None
    assert remaining("train", [Row(1)], status=Status.succeeded) is None


def test_evaluating_leaves_only_the_evaluation() -> None:
    assert remaining("evaluating", [Row(1), Row(2)], current_epoch=10) == pytest.approx(10.0)


def test_the_estimate_says_about() -> None:
    assert describe_remaining(None) is None
    assert describe_remaining(41.0) == "about 40 s left"
    assert describe_remaining(1.0) == "about 5 s left"
    assert describe_remaining(12 * 60 + 10) == "about 12 min left"
    assert describe_remaining(2 * 3600 + 5 * 60) == "about 2 h 05 min left"


def test_resource_readings_in_words() -> None:
    gpu = GpuFigures(0, "NVIDIA H200", 87.0, 30 * 2**30, 140 * 2**30)
    telemetry = Telemetry(
        cpu_percent=180.4, cpu_count=2, process_rss_bytes=int(1.25 * 2**30),
        memory_used_bytes=5 * 2**30, memory_total_bytes=16 * 2**30, gpus=(gpu,),
    )  # fmt: skip
    assert describe_telemetry(telemetry.as_json()) == [
        "CPU 180% of 2 cores · process 1.2 GiB · machine 5.0 GiB of 16.0 GiB",
        "GPU 0 (NVIDIA H200) 87% · 30.0 GiB of 140.0 GiB",
    ]
    first = Telemetry(None, 4, 2**30, 2**30, 2**31)
    assert describe_telemetry(first.as_json())[0].startswith("CPU of 4 cores")
    assert describe_telemetry(None) == []
    assert describe_telemetry({"written": "by another version"}) == []


@pytest.mark.parametrize(
    ("augmentation", "images"),
    [(None, 1000), ("none", 1000), ("flip", 2000), ("flip_translate", 6000)],
)
def test_the_evaluation_predicts_each_test_image_once_per_view(
    augmentation: str | None, images: int
) -> None:
    hyperparameters = {"test_size": 1000, "test_time_augmentation": augmentation}
    assert evaluation_images({"hyperparameters": hyperparameters}) == images
