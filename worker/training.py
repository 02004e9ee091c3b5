"""Compile and fit: one shared training function that every model builder feeds."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from app.hyperparameters import CustomCnnHyperparameters
from app.schemas import ExperimentSpec
from worker.architectures import build_custom_cnn
from worker.callbacks import ExperimentRecorder
from worker.data import CLASS_NAMES, make_dataset

ModelBuilder = Callable[[ExperimentSpec], keras.Model]


def _custom_cnn(spec: ExperimentSpec) -> keras.Model:
    hp = spec.hyperparameters
    assert isinstance(hp, CustomCnnHyperparameters)
    return build_custom_cnn(
        num_classes=len(CLASS_NAMES),
        image_size=hp.image_size,
        conv_blocks=hp.conv_blocks,
        filters=hp.filters,
        dense_units=hp.dense_units,
        dropout_rate=hp.dropout_rate,
    )


BUILDERS: dict[str, ModelBuilder] = {"custom_cnn": _custom_cnn}


def build_model(spec: ExperimentSpec) -> keras.Model:
    try:
        builder = BUILDERS[spec.model]
    except KeyError:
        raise ValueError(f"no builder for model {spec.model!r} on this worker") from None
    return builder(spec)


@dataclass(frozen=True)
class TrainingData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def fit(
    *, experiment_id: int, model: keras.Model, spec: ExperimentSpec, data: TrainingData
) -> ExperimentRecorder:
    """Train with the spec's settings; returns the recorder, which knows if it was cancelled."""
    hp = spec.hyperparameters
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=hp.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    train = make_dataset(
        data.x_train,
        data.y_train,
        batch_size=hp.batch_size,
        image_size=hp.image_size,
        shuffle=True,
        seed=hp.seed,
    )
    validation = make_dataset(
        data.x_val,
        data.y_val,
        batch_size=hp.batch_size,
        image_size=hp.image_size,
        shuffle=False,
        seed=hp.seed,
    )
    recorder = ExperimentRecorder(
        experiment_id=experiment_id,
        steps_per_epoch=math.ceil(len(data.x_train) / hp.batch_size),
        train_images=len(data.x_train),
    )
    # The pipeline shuffles (seeded); Keras cannot shuffle a tf.data.Dataset itself.
    model.fit(
        train,
        validation_data=validation,
        epochs=hp.epochs,
        callbacks=[recorder],
        shuffle=False,
        verbose=0,
    )
    return recorder
