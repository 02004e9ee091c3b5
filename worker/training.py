"""Compile and fit: one shared training function that every model builder feeds.

Transfer models train in two phases, as the original study did: the head on a frozen base,
then (optionally) fine-tuning with the base unfrozen, its epochs numbered after the first's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

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
from worker.data import make_dataset
from worker.hardware import native_bfloat16
from worker.learning_rate import Lookahead, TriangularSchedule
from worker.lease import holding
from worker.muon import Muon
from worker.pruning import TrialPruner
from worker.schedule import ResumableEarlyStopping, schedule_callbacks

RECALIBRATION_IMAGES = 1024
"""Training images whose batch statistics BatchNorm's moving averages are recomputed from
before each validation: a forward pass over them costs about a third of training on them."""

PhaseListener = Callable[[keras.Model, str], None]
"""Told when a phase starts, with the model as that phase will train it."""


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


LearningRate: TypeAlias = float | keras.optimizers.schedules.LearningRateSchedule


def make_optimizer(
    hp: TrainingHyperparameters, learning_rate: LearningRate
) -> keras.optimizers.Optimizer:
    if hp.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=hp.weight_decay)
    if hp.optimizer == "sgd":
        return keras.optimizers.SGD(
            learning_rate=learning_rate,
            momentum=hp.momentum,
            nesterov=True,
            weight_decay=hp.weight_decay or None,
        )
    if isinstance(hp, FastCnnHyperparameters) and hp.optimizer == "muon":
        return Muon(
            learning_rate,
            peak_learning_rate=hp.learning_rate,
            filter_learning_rate=hp.muon_learning_rate,
            momentum=hp.momentum,
            filter_momentum=hp.muon_momentum,
            weight_decay_rate=hp.weight_decay,
        )
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_loss(hp: TrainingHyperparameters) -> keras.losses.Loss:
    if hp.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=hp.focal_alpha, gamma=hp.focal_gamma, label_smoothing=hp.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(label_smoothing=hp.label_smoothing)


def compile_for_phase(
    model: keras.Model, hp: TrainingHyperparameters, learning_rate: LearningRate
) -> None:
    """Compile with every variable a training step updates already made: the optimizer's
    slots, and the metric's totals (an instance builds them; the string "accuracy" leaves them
    to the first step). Keras on TensorFlow, with no distribution strategy, would otherwise
    create them inside the first step, and a step that creates variables is traced twice. For
    a large model tracing is most of a phase's first epoch."""
    model.compile(
        optimizer=make_optimizer(hp, learning_rate),
        loss=make_loss(hp),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=JIT_COMPILE[hp.xla],
    )
    model.optimizer.build(model.trainable_variables)


def restore_optimizer(model: keras.Model, saved: keras.optimizers.Optimizer) -> None:
    """Carry a checkpoint's optimizer state (step count, learning rate, Adam's moments) into
    the freshly compiled one. Compiling afresh, rather than keeping the loaded model's
    compilation, keeps the spec's settings (XLA, loss) exactly as an uninterrupted run has
    them; the same optimizer over the same trainable variables lists its state alike."""
    for mine, theirs in zip(model.optimizer.variables, saved.variables, strict=True):
        mine.assign(theirs)


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization layer, inside nested models (a transfer base) too."""
    found: list[keras.layers.BatchNormalization] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batchnorm_layers(layer))
    return found


def _training_batchnorm(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in batchnorm_layers(model) if layer.trainable]


class BatchNormRecalibrator:
    """Sets the moving mean and variance of every BatchNormalization layer that trains to the
    average of its statistics over some batches, computed with the current weights.

    Validation, test and saved models use the moving averages, but during training they
    trail the weights: each step mixes a little of the current batch into statistics of
    older weights (and of the initial 0 and 1). A run of a few dozen steps whose weights move
    fast (a random MobileNetV2, a small BatchNorm CNN) ends with averages that no longer
    match its layers, and the network, fine on its training batches, predicts one class for
    every image. Recomputing them for the weights as they are (as "precise BatchNorm" does)
    removes that lag whatever the run's length. Frozen layers (a pre-trained base) are left
    as they are: they normalise with their own statistics.

    Made once for a set of training layers (a phase), it traces its update once and reuses
    the graph every epoch: a new ``tf.function`` per call traced the whole model again each
    time (seconds an epoch for an EfficientNet, and TensorFlow's retracing warnings)."""

    def __init__(self, model: keras.Model) -> None:
        self.layers = layers = _training_batchnorm(model)

        @tf.function(reduce_retracing=True)  # the momentum is an input, not a constant
        def update(images: tf.Tensor, momentum: tf.Tensor) -> None:
            for layer in layers:
                layer.momentum = momentum
            model(images, training=True)

        self.traced_update = update

    def covers(self, model: keras.Model) -> bool:
        """Whether the model's training BatchNorm layers are still the ones this one sets."""
        return _training_batchnorm(model) == self.layers  # layers compare by identity

    def __call__(self, batches: tf.data.Dataset) -> None:
        if not self.layers:
            return
        momenta = [layer.momentum for layer in self.layers]
        seen = 0
        try:
            for images, _labels in batches:
                count = int(images.shape[0])
                # A running mean of the batches' statistics, each weighted by its images.
                self.traced_update(images, tf.constant(seen / (seen + count), tf.float32))
                seen += count
        finally:
            for layer, momentum in zip(self.layers, momenta, strict=True):
                layer.momentum = momentum


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrates BatchNorm (``BatchNormRecalibrator``) before each evaluation in ``fit``:
    validation, the best-weights choice and checkpoints see statistics of the weights they
    judge, and the model after ``fit`` is tested and saved with them. A new recalibrator
    comes with each new set of training layers (fine-tuning unfreezes the base)."""

    def __init__(self, batches: tf.data.Dataset) -> None:
        super().__init__()
        self.batches = batches
        self.recalibrator: BatchNormRecalibrator | None = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self.recalibrator is None or not self.recalibrator.covers(self.model):
            self.recalibrator = BatchNormRecalibrator(self.model)
        self.recalibrator(self.batches)


JIT_COMPILE: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
"""xla -> Keras's jit_compile; Keras's "auto" compiles on GPUs and TPUs, never on a CPU-only
machine."""


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
