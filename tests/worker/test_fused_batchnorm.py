"""The fused BatchNorm computes what Keras's layer does, in training and at evaluation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from worker.fused_batchnorm import FusedBatchNormalization
from worker.recalibration import BatchNormRecalibrator

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _pair(**settings: object) -> tuple[keras.layers.Layer, keras.layers.Layer]:
    return (
        keras.layers.BatchNormalization(momentum=0.4, epsilon=1e-12, **settings),
        FusedBatchNormalization(momentum=0.4, epsilon=1e-12, **settings),
    )


def _images(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(2.0, 3.0, (16, 8, 8, 5)).astype(np.float32)


@pytest.mark.parametrize("settings", [{"center": False, "scale": False}, {}])
def test_training_steps_normalise_and_move_the_statistics_as_keras_does(
    settings: dict[str, bool],
) -> None:
    keras_layer, fused = _pair(**settings)
    for seed in range(3):
        images = _images(seed)
        np.testing.assert_allclose(
            fused(images, training=True), keras_layer(images, training=True), atol=1e-5
        )
    # The plain variance, as Keras averages it, not the kernel's sample variance.
    np.testing.assert_allclose(fused.moving_mean, keras_layer.moving_mean, rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, keras_layer.moving_variance, rtol=1e-5)
    unseen = _images(9)
    np.testing.assert_allclose(fused(unseen), keras_layer(unseen), atol=1e-4)


def test_bfloat16_activations_come_back_bfloat16_and_normalised() -> None:
    fused = FusedBatchNormalization(center=False, scale=False, dtype="mixed_bfloat16")
    outputs = fused(tf.cast(_images(0), tf.bfloat16), training=True)
    assert outputs.dtype == tf.bfloat16
    assert fused.moving_mean.dtype == "float32"
    values = tf.cast(outputs, tf.float32).numpy()
    np.testing.assert_allclose(values.mean(axis=(0, 1, 2)), 0.0, atol=0.02)
    np.testing.assert_allclose(values.std(axis=(0, 1, 2)), 1.0, atol=0.02)


def test_recalibration_sets_the_moving_statistics_to_the_batches_own() -> None:
    """The recalibrator swaps each layer's momentum for a tensor inside its traced update."""
    inputs = keras.Input((8, 8, 5))
    model = keras.Model(inputs, FusedBatchNormalization()(inputs))
    images = np.concatenate([_images(0), _images(1)])
    batches = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images)))).batch(16)

    BatchNormRecalibrator(model)(batches)

    layer = model.layers[-1]
    np.testing.assert_allclose(layer.moving_mean, images.mean(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(layer.moving_variance, images.var(axis=(0, 1, 2)), rtol=0.05)
    assert layer.momentum == 0.99  # its own again
