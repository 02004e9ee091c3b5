"""What a phase compiles with: the spec's optimizer, loss and XLA setting.

Kept apart from the Trainer, which needs TensorFlow, so that anything training the same
networks on another Keras backend (scripts/fast_recipe_gpu.py) compiles them the same way.
"""

from __future__ import annotations

from typing import TypeAlias

import keras

from app.core.hyperparameters import FastCnnHyperparameters, TrainingHyperparameters
from worker.muon import Muon

JIT_COMPILE: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
"""xla -> Keras's jit_compile; Keras's "auto" compiles on GPUs and TPUs, never on a CPU-only
machine."""


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
