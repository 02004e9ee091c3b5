"""Time to accuracy: how many epochs, and how much training time, a run took to first reach a
validation accuracy. A fair way to weigh a slow model that ends higher against a fast one:
the final accuracy alone hides that one got to 90% in a tenth of the time.

Training time is the sum of the epochs' own seconds (``Experiment.training_seconds``), never
finished_at - started_at, which counts queueing and the idle time between attempts. An epoch
without seconds adds nothing, as SQL's SUM leaves out NULL, so the two always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

THRESHOLDS = (0.80, 0.85, 0.90, 0.93)
"""Validation accuracies worth reaching on CIFAR-10: a small CNN gets to 80%, transfer
learning to 90% and beyond."""


class EpochTiming(Protocol):
    """What is read of an epoch: an ORM row, a plain row or ``EpochMetricPublic``."""

    @property
    def epoch(self) -> int: ...

    @property
    def val_accuracy(self) -> float | None: ...

    @property
    def seconds(self) -> float | None: ...


@dataclass(frozen=True)
class Reached:
    """The first epoch whose validation accuracy was at least ``threshold``, and the training
    seconds up to and including it; both None when the run never got there."""

    threshold: float
    epoch: int | None
    training_seconds: float | None


def elapsed_seconds(epochs: Iterable[EpochTiming]) -> dict[int, float]:
    """Each epoch's training seconds up to and including it, by epoch number."""
    elapsed, found = 0.0, {}
    for row in sorted(epochs, key=lambda row: row.epoch):
        elapsed += row.seconds or 0.0
        found[row.epoch] = elapsed
    return found


def time_to_accuracy(
    epochs: Iterable[EpochTiming], thresholds: Sequence[float] = THRESHOLDS
) -> list[Reached]:
    """One ``Reached`` per threshold, in the order given; ``epochs`` in any order."""
    rows = sorted(epochs, key=lambda row: row.epoch)
    elapsed_by_epoch = elapsed_seconds(rows)
    first: dict[float, Reached] = {}
    for row in rows:
        elapsed = elapsed_by_epoch[row.epoch]
        accuracy = row.val_accuracy
        if accuracy is None:
            continue
        for threshold in thresholds:
            if threshold not in first and accuracy >= threshold:
                first[threshold] = Reached(threshold, row.epoch, elapsed)
    return [first.get(threshold, Reached(threshold, None, None)) for threshold in thresholds]
