"""The Keras callback that streams a run into the database while it trains."""

from __future__ import annotations

import logging
import time
from typing import Any

import keras

from app.core import crud
from app.core.db import session_scope
from worker.pruning import TrialPruner

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 1.0
"""How often progress and cancel requests touch the database during an epoch."""


class ExperimentRecorder(keras.callbacks.Callback):
    """Writes one row per epoch, progress within the epoch, and stops on a cancel request.

    A sweep's trial (``pruner``) is judged once each epoch's row is written; when its rule
    prunes it, training stops and ``pruned`` holds the reason.

    Every write is fenced by the attempt's lease: when another attempt has taken the run
    over, training stops at once and ``lost`` holds the ``LeaseLost`` for the caller to raise
    (the batch hook runs on a helper thread, where raising would not stop ``fit``).

    Progress and cancel checks hit the database at most every PROGRESS_INTERVAL_SECONDS, so
    recording costs well under 1% of an epoch (`cifarlab bench train` measures it).
    """

    # Keras runs the batch hook on a helper thread and keeps dispatching steps; a callback not
    # marked safe would make it wait for every step's metrics (the hook never reads them).
    # Keras waits for pending hooks before on_epoch_end, so rows never overtake progress.
    async_safe = True

    def __init__(
        self,
        *,
        lease: crud.Lease,
        steps_per_epoch: int,
        train_images: int,
        phase: str = "train",
        pruner: TrialPruner | None = None,
    ) -> None:
        super().__init__()
        self.lease = lease
        self.steps_per_epoch = max(steps_per_epoch, 1)
        self.train_images = train_images
        self.phase = phase
        self.pruner = pruner
        self.cancelled = False
        self.pruned: str | None = None
        self.lost: crud.LeaseLost | None = None
        self._epoch_started = 0.0
        self._last_progress = 0.0
        self._last_batch_end = 0.0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        self._last_batch_end = now
        if self.lost or now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        try:
            with session_scope() as session:
                cancel = crud.record_progress(
                    session=session,
                    lease=self.lease,
                    epoch=self._epoch + 1,
                    epoch_progress=min((batch + 1) / self.steps_per_epoch, 1.0),
                )
        except crud.LeaseLost as lost:
            self._lose(lost)
            return
        if cancel:
            self._stop()

    def _stop(self) -> None:
        logger.info("experiment %s: cancel requested, stopping", self.lease.experiment_id)
        self.cancelled = True
        self.model.stop_training = True

    def _lose(self, lost: crud.LeaseLost) -> None:
        logger.warning("%s; stopping without writing more", lost)
        self.lost = lost
        self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.cancelled or self.lost:
            return  # a partial epoch is not an epoch; the rows before it stay
        logs = logs or {}
        seconds = time.perf_counter() - self._epoch_started
        training_seconds = self._last_batch_end - self._epoch_started
        values = {
            "loss": logs.get("loss"),
            "accuracy": logs.get("accuracy"),
            "val_loss": logs.get("val_loss"),
            "val_accuracy": logs.get("val_accuracy"),
            "learning_rate": self._learning_rate(logs),
            "seconds": seconds,
            "images_per_second": self.train_images / training_seconds
            if training_seconds > 0
            else None,
        }
        numbers = {k: None if v is None else float(v) for k, v in values.items()}
        logger.info(
            "experiment %s: epoch %s (%s) %s", self.lease.experiment_id, epoch + 1, self.phase,
            " ".join(f"{k} {v:.4g}" for k, v in numbers.items() if v is not None),
        )  # fmt: skip
        with session_scope() as session:
            cancel = crud.record_epoch(
                session=session,
                lease=self.lease,
                epoch=epoch + 1,
                values={**numbers, "phase": self.phase},
            )  # raises LeaseLost: the checkpoint after it must not be saved either
        if cancel:  # epochs shorter than the progress interval still see a cancel
            self._stop()
            return
        decision = self.pruner.judge(epoch + 1, numbers) if self.pruner else None
        if decision is not None and decision.prune:
            self.pruned = decision.reason
            self.model.stop_training = True

    def _learning_rate(self, logs: dict[str, Any]) -> float | None:
        if "learning_rate" in logs:
            return float(logs["learning_rate"])
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
