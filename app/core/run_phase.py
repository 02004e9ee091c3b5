"""What a run is doing now, in words, and about how long it has left: the experiment page's
progress line ("loading data", "epoch 3/20", "fine-tuning (phase 2) · epoch 7/20",
"evaluating") and its estimate, the same for the page and its live stream.

Pure functions of what the database holds: the worker writes ``Experiment.run_phase`` when
it moves on (``crud.set_run_phase``), and the epoch rows carry their seconds.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Sequence
from typing import Protocol

from app.core.models import Status


class RunPhase(enum.StrEnum):
    """``Experiment.run_phase``: the training phases share the names the epoch rows'
    ``phase`` has, so the rows of the phase running now are found by it."""

    loading_data = "loading_data"
    train = "train"
    fine_tune = "fine_tune"
    evaluating = "evaluating"


TRAINING_PHASES = (RunPhase.train, RunPhase.fine_tune)


class TimedEpoch(Protocol):
    """An epoch row as the estimate reads it (``crud.EpochRow`` or ``EpochMetricPublic``)."""

    @property
    def epoch(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def seconds(self) -> float | None: ...
    @property
    def images_per_second(self) -> float | None: ...


def _phase(run_phase: str | None) -> RunPhase | None:
    try:
        return None if run_phase is None else RunPhase(run_phase)
    except ValueError:  # written by another version
        return None


def describe_phase(
    *, status: Status, run_phase: str | None, current_epoch: int, total_epochs: int
) -> str:
    """The progress line's words: "queued", "loading data", "epoch 3/20", "fine-tuning
    (phase 2) · epoch 7/20", "evaluating", "finished" (or how else it ended)."""
    if status == Status.queued:
        return "queued"
    if status == Status.succeeded:
        return "finished"
    if status != Status.running:
        return str(status)
    phase = _phase(run_phase)
    epoch = f"epoch {max(current_epoch, 1)}/{total_epochs}"
    if phase == RunPhase.loading_data:
        return "loading data"
    if phase == RunPhase.train:
        return epoch
    if phase == RunPhase.fine_tune:
        return f"fine-tuning (phase 2) · {epoch}"
    if phase == RunPhase.evaluating:
        return "evaluating"
    return "starting"


def remaining_seconds(
    *,
    status: Status,
    run_phase: str | None,
    epochs: Sequence[TimedEpoch],
    current_epoch: int,
    epoch_progress: float,
    total_epochs: int,
    evaluation_images: int,
) -> float | None:
    """About how long a running run has left: the mean seconds of the current phase's
    finished epochs times the planned epochs still to run (less the part of the current one
    done), plus the evaluation, priced at the phase's training images per second (predicting
    costs less than training, so this leans long). None when nothing is measured yet: before
    the phase's first epoch ends, while data loads, and once the run has ended.

    A transfer run's fine-tuning epochs are priced at the frozen phase's rate until the first
    of them ends; they are slower, so the estimate grows then."""
    phase = _phase(run_phase)
    if status != Status.running or phase is None or phase == RunPhase.loading_data:
        return None
    measured = phase if phase in TRAINING_PHASES else (epochs[-1].phase if epochs else None)
    timed = [row for row in epochs if row.phase == measured and row.seconds is not None]
    if not timed:
        return None
    rates = [row.images_per_second for row in timed if row.images_per_second]
    evaluation = evaluation_images / statistics.fmean(rates) if rates else 0.0
    if phase == RunPhase.evaluating:
        return evaluation
    done = max(row.epoch for row in epochs)
    in_progress = epoch_progress if current_epoch == done + 1 else 0.0
    remaining_epochs = max(total_epochs - done - in_progress, 0.0)
    mean = statistics.fmean(row.seconds for row in timed if row.seconds is not None)
    return mean * remaining_epochs + evaluation


def describe_remaining(seconds: float | None) -> str | None:
    """ "about 40 s left", "about 12 min left", "about 2 h 05 min left"; None for None."""
    if seconds is None:
        return None
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5)} s left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"
