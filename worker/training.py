"""Fit in phases: one shared training function that every model builder feeds (what each
phase compiles with is worker/compiling.py).

Transfer models train in two phases, as the original study did: the head on a frozen base,
then (optionally) fine-tuning with the base unfrozen, its epochs numbered after the first's.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from app.core.crud import Lease
from app.core.hyperparameters import (
    FastCnnHyperparameters,
    TrainingHyperparameters,
    TransferHyperparameters,
)
from app.core.schemas import ExperimentSpec
from worker.architectures import freeze_base, unfreeze_base
from worker.augmentation import build_augmenter
from worker.callbacks import ExperimentRecorder
from worker.checkpoints import Checkpoint, CheckpointCallback, ResumePoint
from worker.compiling import LearningRate, compile_for_phase, restore_optimizer
from worker.data import TrainingData
from worker.hardware import native_bfloat16
from worker.learning_rate import Lookahead, TriangularSchedule
from worker.lease import holding
from worker.pipeline import make_dataset
from worker.pruning import TrialPruner
from worker.recalibration import RECALIBRATION_IMAGES, BatchNormRecalibration
from worker.schedule import ResumableEarlyStopping, schedule_callbacks

PhaseListener = Callable[[keras.Model, str], None]
"""Told when a phase starts, with the model as that phase will train it."""


def deterministic_kernels() -> bool:
    """Whether runs use TensorFlow's deterministic kernels: on a CPU-only machine, so a seeded
    run repeats itself and a resumed one matches an uninterrupted one. On a GPU some kernels
    (cuDNN's fastest convolutions, scatter-adds) have no deterministic version and would
    raise, so GPU runs keep TensorFlow's defaults (docs/architecture.md)."""
    return not tf.config.list_physical_devices("GPU")


def precision_policy(hp: TrainingHyperparameters) -> str:
    """auto: float16 on a GPU with tensor cores (compute capability 7.0+); bfloat16 on a
    CPU-only machine whose processor has native bfloat16; float32 elsewhere."""
    if hp.mixed_precision == "float16":
        return "mixed_float16"
    if hp.mixed_precision == "bfloat16":
        return "mixed_bfloat16"
    if hp.mixed_precision == "off":
        return "float32"
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and capability >= (7, 0):
            return "mixed_float16"
    if not gpus and native_bfloat16():
        return "mixed_bfloat16"
    return "float32"


class Trainer:
    """Runs the phases of one experiment and reports whether a cancel or its sweep's pruning
    rule (``pruner``) stopped it.

    Resumed from a checkpoint, the phase it stopped in goes on with the checkpoint's compiled
    optimizer and schedule counters, on the same batches: its epochs match an uninterrupted
    run's (docs/architecture.md, "Exact resume")."""

    def __init__(
        self,
        *,
        lease: Lease,
        model: keras.Model,
        spec: ExperimentSpec,
        data: TrainingData,
        checkpoint: Checkpoint,
        start: ResumePoint,
        best_weights: list[np.ndarray] | None = None,
        pruner: TrialPruner | None = None,
    ) -> None:
        self.lease = lease
        self.pruner = pruner
        self.model = model
        self.hp = spec.hyperparameters
        self.data = data
        self.checkpoint = checkpoint
        self.start = start
        self.best_weights = best_weights
        self.steps_per_epoch = math.ceil(len(data.x_train) / self.hp.batch_size)
        self.augment = build_augmenter(self.hp)
        self.validation_data = make_dataset(
            data.x_val, data.y_val, batch_size=self.hp.batch_size,
            image_size=self.hp.image_size, shuffle=False, seed=self.hp.seed,
        )  # fmt: skip
        self.recalibration = BatchNormRecalibration(
            make_dataset(
                data.x_train[:RECALIBRATION_IMAGES], data.y_train[:RECALIBRATION_IMAGES],
                batch_size=self.hp.batch_size, image_size=self.hp.image_size, shuffle=False,
                seed=self.hp.seed,
            )
        )  # fmt: skip
        self.cancelled = False
        self.pruned: str | None = None
        """Why the sweep's rule stopped the run, when it did."""
        # Only ImageNet bases are frozen first and keep BatchNorm frozen: a random base's
        # features and statistics teach the head nothing until they are trained.
        self.pretrained = (
            isinstance(self.hp, TransferHyperparameters) and self.hp.weights == "imagenet"
        )

    def run(self, on_phase_start: PhaseListener) -> None:
        hp = self.hp
        phase_one_epochs = self.start.phase_one_epochs
        epochs_done = self.start.epochs_done
        if phase_one_epochs is None:
            if self.pretrained and not self._resuming("train"):
                freeze_base(self.model)  # a random base's features teach the head nothing
            on_phase_start(self.model, "train")
            epochs_done = self._fit("train", epochs_done, hp.epochs, hp.learning_rate, None)
            phase_one_epochs = epochs_done
        if (
            self.cancelled
            or self.pruned
            or not (isinstance(hp, TransferHyperparameters) and hp.fine_tune)
        ):
            return
        if not self._resuming("fine_tune"):
            unfreeze_base(self.model, hp.fine_tune_layers, keep_batchnorm_frozen=self.pretrained)
        on_phase_start(self.model, "fine_tune")
        self._fit(
            "fine_tune",
            epochs_done,
            phase_one_epochs + hp.fine_tune_epochs,
            hp.fine_tune_learning_rate,
            phase_one_epochs,
        )

    def _resuming(self, phase: str) -> bool:
        """Whether the checkpoint stopped inside ``phase``: its model is compiled, with the
        optimizer state and trainable layers that phase had."""
        return self.start.epochs_done > 0 and self.start.phase == phase

    def _fit(
        self,
        phase: str,
        initial_epoch: int,
        final_epoch: int,
        learning_rate: float,
        phase_one_epochs: int | None,
    ) -> int:
        """Train epochs initial_epoch+1..final_epoch; returns the epochs done when it stopped."""
        resuming = self._resuming(phase)
        saved = self.model.optimizer if resuming else None
        rate: LearningRate = learning_rate
        phase_steps = (final_epoch - (phase_one_epochs or 0)) * self.steps_per_epoch
        if self.hp.learning_rate_schedule == "triangular":
            rate = TriangularSchedule(learning_rate, phase_steps)
        compile_for_phase(self.model, self.hp, rate)
        if saved is not None:
            restore_optimizer(self.model, saved)
        schedule = schedule_callbacks(
            self.hp,
            self.start.schedule if resuming else None,
            self.best_weights if resuming else None,
        )
        if any(isinstance(c, ResumableEarlyStopping) and c.stopped for c in schedule):
            final_epoch = initial_epoch  # it had stopped early: end the phase as it would have
        recorder = ExperimentRecorder(
            lease=self.lease,
            steps_per_epoch=self.steps_per_epoch,
            train_images=len(self.data.x_train),
            phase=phase,
            pruner=self.pruner,
        )
        saver = CheckpointCallback(
            self.checkpoint, lambda: holding(self.lease), steps_per_epoch=self.steps_per_epoch,
            phase=phase, phase_one_epochs=phase_one_epochs, schedule=schedule,
        )  # fmt: skip
        train_data = make_dataset(
            self.data.x_train, self.data.y_train, batch_size=self.hp.batch_size,
            image_size=self.hp.image_size, shuffle=True, seed=self.hp.seed,
            augment=self.augment, first_epoch=initial_epoch,
            epochs=max(final_epoch - initial_epoch, 1),
            alternating_flip=self.hp.augment_flip and self.hp.flip_alternating,
            crop_epochs=self.hp.crop_epochs if isinstance(self.hp, FastCnnHyperparameters) else 0,
            crop_size=self.hp.crop_size if isinstance(self.hp, FastCnnHyperparameters) else 0,
            one_at_a_time=self.augment is not None and deterministic_kernels(),
        )  # fmt: skip
        averaging = []
        if isinstance(self.hp, FastCnnHyperparameters) and self.hp.lookahead:
            averaging = [Lookahead(phase_steps)]
        history = self.model.fit(
            train_data,
            validation_data=self.validation_data,
            initial_epoch=initial_epoch,
            epochs=final_epoch,
            steps_per_epoch=self.steps_per_epoch,
            # Lookahead first, so the weights it hands over are the ones recalibrated and
            # validated; the saver last: it saves the others' state.
            callbacks=[*averaging, self.recalibration, recorder, *schedule, saver],
            shuffle=False,  # the pipeline shuffles, seeded by epoch
            verbose=0,
        )
        if recorder.lost is not None:
            raise recorder.lost
        self.cancelled = recorder.cancelled
        self.pruned = recorder.pruned
        return initial_epoch + len(history.epoch)
