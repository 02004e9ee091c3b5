"""BatchNorm's moving statistics recomputed for the weights as they are, before each
evaluation. TensorFlow only traces the update; on another Keras backend (JAX, in
scripts/fast_recipe_gpu.py) it runs eagerly, so the same rule serves both."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import keras

RECALIBRATION_IMAGES = 1024
"""Training images whose batch statistics BatchNorm's moving averages are recomputed from
before each validation: a forward pass over them costs about a third of training on them."""

Batches = Iterable[tuple[Any, Any]]
"""(images, labels) batches: a tf.data pipeline in the worker, arrays elsewhere."""


def _traced(update: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """``update`` as one TensorFlow graph under TensorFlow (the momentum an input, not a
    constant, so one trace serves every batch), as it is on another backend."""
    if keras.backend.backend() != "tensorflow":
        return update
    import tensorflow as tf  # only under TensorFlow: this module loads on every backend

    return tf.function(update, reduce_retracing=True)


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
    time (seconds an epoch for an EfficientNet, and TensorFlow's retracing warnings). On
    another Keras backend the update runs eagerly."""

    def __init__(self, model: keras.Model) -> None:
        self.layers = layers = _training_batchnorm(model)

        def update(images: Any, momentum: Any) -> None:
            for layer in layers:
                layer.momentum = momentum
            model(images, training=True)

        self.traced_update = _traced(update)

    def covers(self, model: keras.Model) -> bool:
        """Whether the model's training BatchNorm layers are still the ones this one sets."""
        return _training_batchnorm(model) == self.layers  # layers compare by identity

    def __call__(self, batches: Batches) -> None:
        if not self.layers:
            return
        momenta = [layer.momentum for layer in self.layers]
        seen = 0
        try:
            for images, _labels in batches:
                count = int(images.shape[0])
                # A running mean of the batches' statistics, each weighted by its images.
                self.traced_update(
                    images, keras.ops.convert_to_tensor(seen / (seen + count), "float32")
                )
                seen += count
        finally:
            for layer, momentum in zip(self.layers, momenta, strict=True):
                layer.momentum = momentum


class BatchNormRecalibration(keras.callbacks.Callback):
    """Recalibrates BatchNorm (``BatchNormRecalibrator``) before each evaluation in ``fit``:
    validation, the best-weights choice and checkpoints see statistics of the weights they
    judge, and the model after ``fit`` is tested and saved with them. A new recalibrator
    comes with each new set of training layers (fine-tuning unfreezes the base)."""

    def __init__(self, batches: Batches) -> None:
        super().__init__()
        self.batches = batches
        self.recalibrator: BatchNormRecalibrator | None = None

    def on_test_begin(self, logs: dict | None = None) -> None:
        if self.recalibrator is None or not self.recalibrator.covers(self.model):
            self.recalibrator = BatchNormRecalibrator(self.model)
        self.recalibrator(self.batches)
