"""BatchNorm in one kernel: Keras's layer, computed by TensorFlow's fused operation.

Keras 3's BatchNormalization casts bfloat16 activations to float32, takes the moments and
normalises in separate operations, and casts back: on a CPU training in bfloat16 that made
BatchNorm a quarter of the fast family's step. TensorFlow's FusedBatchNormV3 reads the
bfloat16 activations once, keeps its sums in float32 and writes the result in one pass, so
the fast family's narrow network (32-128-128) trains 1.2 times as fast with the same statistics
(docs/benchmarks.md, "BatchNorm in one kernel").

On another Keras backend the layer is Keras's own, and TensorFlow is imported only when the
fused kernel is used, so the fast family's network builds wherever Keras runs: on a GPU
machine that has JAX but no TensorFlow, scripts/fast_recipe_gpu.py trains it there.
"""

from __future__ import annotations

from typing import Any

import keras

FUSED_MIN_EPSILON = 1.001e-5
"""The smallest epsilon the fused kernel accepts (TensorFlow raises smaller ones to it)."""


@keras.saving.register_keras_serializable(package="cifarlab")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` for images, channels last, computed by the fused
    kernel; other inputs (a mask, another rank or axis) take Keras's path. It is a subclass,
    so its weights, its config and everything that looks for BatchNorm layers (the
    recalibration before each evaluation, fine-tuning's freezing) treat it as one."""

    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if (
            keras.backend.backend() != "tensorflow"
            or mask is not None
            or len(inputs.shape) != 4
            or self.axis not in (-1, 3)
        ):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf  # only here: the module loads on every backend

        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones((channels,))
        offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros((channels,))
        epsilon = max(self.epsilon, FUSED_MIN_EPSILON)
        if training and self.trainable:
            outputs, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=epsilon, is_training=True
            )
            # The kernel returns the sample variance (n - 1); Keras averages the plain one.
            count = tf.cast(tf.size(inputs, out_type=tf.int64) // channels, tf.float32)
            variance = unbiased * (count - 1.0) / count
            momentum = tf.cast(self.momentum, tf.float32)  # a tensor while recalibrating
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(
                self.moving_variance * momentum + variance * (1.0 - momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=epsilon, is_training=False,
            )  # fmt: skip
        return tf.cast(outputs, self.compute_dtype)
