"""The study's ReduceLROnPlateau and EarlyStopping, with state a checkpoint keeps.

Keras resets both in ``on_train_begin``; a run resumed from a checkpoint must instead go on
counting where it stopped (epochs without improvement, the best loss, the cooldown, the best
weights), or it cuts the learning rate and stops at other epochs than an uninterrupted run.
The learning rate itself lives in the optimizer, which the checkpoint's model file keeps.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from app.core.hyperparameters import TrainingHyperparameters

State = dict[str, Any]
"""A callback's counters as JSON values."""


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class ResumableReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    key = "reduce_lr_on_plateau"

    def __init__(self, *, restored: State | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restored = restored

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.restored:
            self.wait = int(self.restored["wait"])
            self.cooldown_counter = int(self.restored["cooldown_counter"])
            self.best = _number(self.restored["best"])

    def state(self) -> State:
        return {
            "wait": int(self.wait),
            "cooldown_counter": int(self.cooldown_counter),
            "best": _number(self.best),
        }


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    key = "early_stopping"

    def __init__(
        self,
        *,
        restored: State | None = None,
        best_weights: list[np.ndarray] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.restored = restored
        self.restored_weights = best_weights

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.restored:
            self.wait = int(self.restored["wait"])
            self.stopped_epoch = int(self.restored["stopped_epoch"])
            self.best = _number(self.restored["best"])
            self.best_epoch = int(self.restored["best_epoch"])
            self.best_weights = self.restored_weights

    @property
    def stopped(self) -> bool:
        """Whether the restored state had already ended its phase."""
        return bool(self.restored and self.restored["stopped_epoch"] > 0)

    def state(self) -> State:
        return {
            "wait": int(self.wait),
            "stopped_epoch": int(self.stopped_epoch),
            "best": _number(self.best),
            "best_epoch": int(self.best_epoch),
        }


Resumable = ResumableReduceLROnPlateau | ResumableEarlyStopping


def schedule_callbacks(
    hp: TrainingHyperparameters,
    restored: dict[str, State] | None = None,
    best_weights: list[np.ndarray] | None = None,
) -> list[Resumable]:
    """Each switchable and new for each phase; ``restored`` continues a checkpoint's counts."""
    restored = restored or {}
    found: list[Resumable] = []
    if hp.reduce_lr_on_plateau:
        found.append(
            ResumableReduceLROnPlateau(
                restored=restored.get(ResumableReduceLROnPlateau.key),
                monitor="val_loss",
                factor=hp.reduce_lr_factor,
                patience=hp.reduce_lr_patience,
                min_lr=hp.min_learning_rate,
            )
        )
    if hp.early_stopping:
        found.append(
            ResumableEarlyStopping(
                restored=restored.get(ResumableEarlyStopping.key),
                best_weights=best_weights,
                monitor="val_loss",
                patience=hp.early_stopping_patience,
                min_delta=hp.early_stopping_min_delta,
                restore_best_weights=True,
            )
        )
    return found
