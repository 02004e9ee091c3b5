"""Compile and fit: one shared training function that every model builder feeds.

Transfer models train in two phases, as the original study did: the head on a frozen base,
then (optionally) fine-tuning with the base unfrozen, its epochs numbered after the first's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from app.hyperparameters import TrainingHyperparameters, TransferHyperparameters
from app.schemas import ExperimentSpec
from worker.architectures import freeze_base, unfreeze_base
from worker.augmentation import build_augmenter
from worker.callbacks import ExperimentRecorder
from worker.checkpoints import Checkpoint, CheckpointCallback, ResumePoint
from worker.data import make_dataset
from worker.hardware import native_bfloat16

PhaseListener = Callable[[keras.Model, str], None]
"""Told when a phase starts, with the model as that phase will train it."""


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def make_optimizer(hp: TrainingHyperparameters, learning_rate: float) -> keras.optimizers.Optimizer:
    if hp.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate,
            momentum=hp.momentum,
            nesterov=True,
            weight_decay=hp.weight_decay or None,
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_loss(hp: TrainingHyperparameters) -> keras.losses.Loss:
    if hp.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=hp.focal_alpha, gamma=hp.focal_gamma, label_smoothing=hp.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)


def schedule_callbacks(hp: TrainingHyperparameters) -> list[keras.callbacks.Callback]:
    """The study's ReduceLROnPlateau and EarlyStopping, each switchable; new for each phase."""
    found: list[keras.callbacks.Callback] = []
    if hp.reduce_lr_on_plateau:
        found.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=hp.reduce_lr_factor,
                patience=hp.reduce_lr_patience,
                min_lr=hp.min_learning_rate,
            )
        )
    if hp.early_stopping:
        found.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=hp.early_stopping_patience,
                min_delta=hp.early_stopping_min_delta,
                restore_best_weights=True,
            )
        )
    return found


JIT_COMPILE: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
"""xla -> Keras's jit_compile; Keras's "auto" compiles on GPUs and TPUs, never on a CPU-only
machine."""


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
    """Runs the phases of one experiment and reports whether a cancel stopped it."""

    def __init__(
        self,
        *,
        experiment_id: int,
        model: keras.Model,
        spec: ExperimentSpec,
        data: TrainingData,
        checkpoint: Checkpoint,
    ) -> None:
        self.experiment_id = experiment_id
        self.model = model
        self.hp = spec.hyperparameters
        self.data = data
        self.checkpoint = checkpoint
        self.steps_per_epoch = math.ceil(len(data.x_train) / self.hp.batch_size)
        self.train_data = make_dataset(
            data.x_train, data.y_train, batch_size=self.hp.batch_size,
            image_size=self.hp.image_size, shuffle=True, seed=self.hp.seed,
            augment=build_augmenter(self.hp),
        )  # fmt: skip
        self.validation_data = make_dataset(
            data.x_val, data.y_val, batch_size=self.hp.batch_size,
            image_size=self.hp.image_size, shuffle=False, seed=self.hp.seed,
        )  # fmt: skip
        self.cancelled = False
        # Only ImageNet bases are frozen first and keep BatchNorm frozen: a random base's
        # features and statistics teach the head nothing until they are trained.
        self.pretrained = (
            isinstance(self.hp, TransferHyperparameters) and self.hp.weights == "imagenet"
        )

    def run(self, start: ResumePoint, on_phase_start: PhaseListener) -> None:
        hp = self.hp
        phase_one_epochs = start.phase_one_epochs
        epochs_done = start.epochs_done
        if phase_one_epochs is None:
            if self.pretrained:
                freeze_base(self.model)  # a random base's features teach the head nothing
            on_phase_start(self.model, "train")
            epochs_done = self._fit("train", epochs_done, hp.epochs, hp.learning_rate, None)
            phase_one_epochs = epochs_done
        if self.cancelled or not (isinstance(hp, TransferHyperparameters) and hp.fine_tune):
            return
        unfreeze_base(self.model, hp.fine_tune_layers, keep_batchnorm_frozen=self.pretrained)
        on_phase_start(self.model, "fine_tune")
        self._fit(
            "fine_tune",
            epochs_done,
            phase_one_epochs + hp.fine_tune_epochs,
            hp.fine_tune_learning_rate,
            phase_one_epochs,
        )

    def _fit(
        self,
        phase: str,
        initial_epoch: int,
        final_epoch: int,
        learning_rate: float,
        phase_one_epochs: int | None,
    ) -> int:
        """Train epochs initial_epoch+1..final_epoch; returns the epochs done when it stopped."""
        self.model.compile(
            optimizer=make_optimizer(self.hp, learning_rate),
            loss=make_loss(self.hp),
            metrics=["accuracy"],
            jit_compile=JIT_COMPILE[self.hp.xla],
        )
        recorder = ExperimentRecorder(
            experiment_id=self.experiment_id,
            steps_per_epoch=self.steps_per_epoch,
            train_images=len(self.data.x_train),
            phase=phase,
        )
        saver = CheckpointCallback(
            self.checkpoint, steps_per_epoch=self.steps_per_epoch, phase=phase,
            phase_one_epochs=phase_one_epochs,
        )  # fmt: skip
        history = self.model.fit(
            self.train_data,
            validation_data=self.validation_data,
            initial_epoch=initial_epoch,
            epochs=final_epoch,
            callbacks=[recorder, saver, *schedule_callbacks(self.hp)],
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=0,
        )
        self.cancelled = recorder.cancelled
        return initial_epoch + len(history.epoch)
