"""Every quick preset learns: trained as its spec says, it beats chance clearly, no collapse.
BatchNorm's statistics are recalibrated for the weights that validation and the test judge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.presets import PRESETS
from app.core.schemas import parse_spec
from tests.support.factories import claim, write_official_cifar10
from worker import runner
from worker.architectures import BATCHNORM_MOMENTUM, build_custom_cnn
from worker.recalibration import BatchNormRecalibration, BatchNormRecalibrator, batchnorm_layers

QUICK = [name for name, preset in PRESETS.items() if preset.kind == "quick"]
TRAIN_PER_CLASS, TEST_PER_CLASS = 80, 20


@pytest.fixture(scope="module")
def learnable_cifar10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """800 train and 200 test images that a network learns in a few steps."""
    return write_official_cifar10(
        tmp_path_factory.mktemp("learnable"),
        train_per_class=TRAIN_PER_CLASS,
        test_per_class=TEST_PER_CLASS,
    )


@pytest.mark.parametrize("name", QUICK)
def test_quick_preset_beats_chance_without_collapsing(
    name: str,
    learnable_cifar10: Path,
    data_dir: Path,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The preset's own model, schedule, batch size and epochs, on 800 learnable images
    instead of its default 2,000-5,000 CIFAR-10 ones (the test's time budget). Few steps per
    epoch are what made BatchNorm's moving statistics, which validation and test use, lag the
    weights: a model that learned on its batches predicted one class for every test image."""
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(learnable_cifar10))
    get_settings.cache_clear()
    data = PRESETS[name].spec.model_dump(mode="json")
    data["hyperparameters"] |= {
        "train_size": 10 * TRAIN_PER_CLASS,
        "test_size": 10 * TEST_PER_CLASS,
    }
    spec = parse_spec(data)
    experiment = crud.create_experiment(session=session, spec=spec)
    session.commit()
    lease = claim(session, experiment.id)
    session.commit()

    runner.run_experiment(lease=lease, spec=spec, settings=get_settings())

    session.expire_all()
    evaluation = crud.get_experiment(session=session, experiment_id=experiment.id).evaluation
    most_predicted = Counter(evaluation.predictions).most_common(1)[0][1]
    assert evaluation.accuracy >= 0.4, f"{name}: test accuracy {evaluation.accuracy:.3f}"
    assert most_predicted <= 0.5 * len(evaluation.predictions), (
        f"{name}: one class takes {most_predicted} of {len(evaluation.predictions)} predictions"
    )


def test_recalibration_sets_moving_statistics_to_the_batches_and_spares_frozen_layers() -> None:
    model = build_custom_cnn(
        num_classes=10, image_size=32, conv_blocks=2, filters=8, batch_norm=True,
        dense_units=16, dropout_rate=0.0,
    )  # fmt: skip
    first, *_, last = batchnorm_layers(model)
    last.trainable = False
    frozen_mean = last.moving_mean.numpy().copy()
    images = np.random.default_rng(0).uniform(0, 255, (100, 32, 32, 3)).astype("float32")
    batches = tf.data.Dataset.from_tensor_slices((images, np.zeros(100))).batch(32)

    BatchNormRecalibrator(model)(batches)

    inputs = keras.Model(model.input, first.input)(images).numpy()
    expected = inputs.mean(axis=(0, 1, 2))  # batches of 32, 32, 32 and 4, image-weighted
    np.testing.assert_allclose(first.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(last.moving_mean.numpy(), frozen_mean)
    assert first.momentum == BATCHNORM_MOMENTUM


def test_each_epochs_recalibration_reuses_one_traced_update_until_the_training_layers_change() -> (
    None
):
    """Tracing the model anew every epoch cost seconds an epoch on a large network."""
    model = build_custom_cnn(
        num_classes=10, image_size=32, conv_blocks=2, filters=8, batch_norm=True,
        dense_units=16, dropout_rate=0.0,
    )  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 255, (96, 32, 32, 3)).astype("float32")
    labels = np.arange(96) % 10
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(32)
    recalibration = BatchNormRecalibration(batches)

    model.fit(batches, validation_data=batches, epochs=3, verbose=0, callbacks=[recalibration])
    first = recalibration.recalibrator
    assert first is not None and first.traced_update.experimental_get_tracing_count() == 1
    model.fit(batches, validation_data=batches, epochs=2, verbose=0, callbacks=[recalibration])
    assert recalibration.recalibrator is first
    assert first.traced_update.experimental_get_tracing_count() == 1

    batchnorm_layers(model)[0].trainable = False  # a phase that freezes part of the network
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(batches, validation_data=batches, epochs=1, verbose=0, callbacks=[recalibration])
    assert recalibration.recalibrator is not first
    assert recalibration.recalibrator.layers == batchnorm_layers(model)[1:]
