"""Time to accuracy: the first epoch at each validation accuracy and the training seconds
until then, from a run's epoch rows alone."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.time_to_accuracy import THRESHOLDS, Reached, time_to_accuracy


@dataclass(frozen=True)
class Epoch:
    epoch: int
    val_accuracy: float | None
    seconds: float | None


def test_each_threshold_gets_its_first_epoch_and_the_seconds_up_to_it() -> None:
    epochs = [
        Epoch(1, 0.70, 30.0),
        Epoch(2, 0.86, 20.0),
        Epoch(3, 0.84, 20.0),
        Epoch(4, 0.91, 25.0),
    ]
    assert time_to_accuracy(epochs) == [
        Reached(0.80, 2, 50.0),
        Reached(0.85, 2, 50.0),  # one epoch can reach two thresholds
        Reached(0.90, 4, 95.0),  # epoch 3's dip does not matter; its seconds count
        Reached(0.93, None, None),
    ]


def test_rows_in_any_order_and_missing_values() -> None:
    """Sorted by epoch first; an epoch without seconds adds none (as SQL's SUM), one without a
    validation accuracy reaches nothing; exactly the threshold counts as reached."""
    epochs = [Epoch(3, 0.93, 5.0), Epoch(1, None, 10.0), Epoch(2, 0.80, None)]
    assert time_to_accuracy(epochs) == [
        Reached(0.80, 2, 10.0),
        Reached(0.85, 3, 15.0),
        Reached(0.90, 3, 15.0),
        Reached(0.93, 3, 15.0),
    ]


def test_no_epochs_reach_nothing_and_thresholds_are_the_callers() -> None:
    assert time_to_accuracy([]) == [Reached(t, None, None) for t in THRESHOLDS]
    assert time_to_accuracy([Epoch(1, 0.6, 4.0)], thresholds=(0.5,)) == [Reached(0.5, 1, 4.0)]
