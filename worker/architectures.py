"""build_* functions: one per model family, each returning an uncompiled Functional model.

Every model takes float32 pixels in 0..255 and applies its own family's preprocessing, so one
data pipeline serves from-scratch and pre-trained models alike. Classifiers output float32
probabilities even under mixed precision, for a numerically stable loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers
from keras.src.applications import convnext, efficientnet, efficientnet_v2, mobilenet_v2, resnet

from worker.fused_batchnorm import FusedBatchNormalization


@dataclass(frozen=True)
class Application:
    """A keras.applications base: how to build it and how its ImageNet file is named."""

    constructor: Callable[..., keras.Model]
    weights_url_template: str
    scale_to_minus_one_one: bool  # False: the model rescales 0..255 itself

    def weights_url(self, image_size: int) -> str:
        return self.weights_url_template.replace("{rows}", str(_mobilenet_rows(image_size)))

    def weights_file(self, image_size: int) -> str:
        return self.weights_url(image_size).rsplit("/", 1)[1]


def _mobilenet_rows(image_size: int) -> int:
    """MobileNetV2 ships ImageNet weights for these sizes; Keras uses 224 for any other."""
    return image_size if image_size in (96, 128, 160, 192, 224) else 224


def _efficientnet(n: int) -> Application:
    return Application(
        getattr(keras.applications, f"EfficientNetB{n}"),
        f"{efficientnet.BASE_WEIGHTS_PATH}efficientnetb{n}_notop.h5",
        scale_to_minus_one_one=False,
    )


APPLICATIONS: dict[str, Application] = {
    **{f"efficientnet_b{n}": _efficientnet(n) for n in range(5)},
    "efficientnetv2_b0": Application(
        keras.applications.EfficientNetV2B0,
        f"{efficientnet_v2.BASE_WEIGHTS_PATH}efficientnetv2-b0_notop.h5",
        scale_to_minus_one_one=False,
    ),
    "resnet50v2": Application(
        keras.applications.ResNet50V2,
        f"{resnet.BASE_WEIGHTS_PATH}resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        scale_to_minus_one_one=True,
    ),
    "mobilenet_v2": Application(
        keras.applications.MobileNetV2,
        f"{mobilenet_v2.BASE_WEIGHT_PATH}"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5",
        scale_to_minus_one_one=True,
    ),
    "convnext_tiny": Application(
        keras.applications.ConvNeXtTiny,
        f"{convnext.BASE_WEIGHTS_PATH}convnext_tiny_notop.h5",
        scale_to_minus_one_one=False,
    ),
}


BATCHNORM_MOMENTUM = 0.9
"""Keras's 0.99 leaves BatchNorm's moving averages, which validation and test use, far from
the batch statistics after a few hundred steps: short runs would evaluate near chance."""
RANDOM_BASE_BATCHNORM_MOMENTUM = BATCHNORM_MOMENTUM


def _classifier(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def build_custom_cnn(
    *,
    num_classes: int,
    image_size: int,
    conv_blocks: int,
    filters: int,
    batch_norm: bool,
    dense_units: int,
    dropout_rate: float,
) -> keras.Model:
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for block in range(conv_blocks):
        for _ in range(2):
            x = layers.Conv2D(filters * 2**block, 3, padding="same", use_bias=not batch_norm)(x)
            if batch_norm:
                x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="custom_cnn")


def _conv_bn_relu(x: keras.KerasTensor, filters: int, strides: int = 1) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x)
    return layers.Activation("relu")(x)


def _residual_block(x: keras.KerasTensor, filters: int, strides: int) -> keras.KerasTensor:
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(shortcut)
    x = _conv_bn_relu(x, filters, strides)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM)(x)
    return layers.Activation("relu")(layers.Add()([shortcut, x]))


def build_residual_cnn(
    *,
    num_classes: int,
    image_size: int,
    width: int,
    stages: int,
    blocks_per_stage: int,
    dropout_rate: float,
) -> keras.Model:
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = _conv_bn_relu(x, width)
    for stage in range(stages):
        for block in range(blocks_per_stage):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _residual_block(x, width * 2**stage, strides)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="residual_cnn")


def build_transfer(
    *,
    application: str,
    num_classes: int,
    image_size: int,
    weights_path: str | None,
    head_units: int,
    head_dropout_rate: float,
    head_units_2: int,
    head_l2: float,
) -> keras.Model:
    """The study's head on a keras.applications base; ``weights_path`` None: random init."""
    spec = APPLICATIONS[application]
    base = spec.constructor(
        include_top=False, weights=weights_path, input_shape=(image_size, image_size, 3)
    )
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = inputs
    if spec.scale_to_minus_one_one:
        x = layers.Rescaling(1.0 / 127.5, offset=-1.0)(x)
    if weights_path is not None:
        # training=False keeps pre-trained BatchNorm statistics even after unfreezing.
        x = base(x, training=False)
    else:
        # A random base has no statistics worth keeping: its BatchNorm learns them, with a
        # momentum that lets the moving averages (Keras's MobileNetV2 uses 0.999) catch up
        # within an epoch instead of leaving validation at chance for several.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = min(layer.momentum, RANDOM_BASE_BATCHNORM_MOMENTUM)
        x = base(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(head_units, activation="relu")(x)
    x = layers.Dropout(head_dropout_rate)(x)
    x = layers.Dense(
        head_units_2, activation="relu", kernel_regularizer=keras.regularizers.L2(head_l2)
    )(x)
    return keras.Model(inputs, _classifier(x, num_classes), name=application)


def transfer_base(model: keras.Model) -> keras.Model | None:
    """The pre-trained base inside a transfer model (None for from-scratch models)."""
    return next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)


def freeze_base(model: keras.Model) -> None:
    base = transfer_base(model)
    if base is not None:
        base.trainable = False


def unfreeze_base(model: keras.Model, top_layers: int, keep_batchnorm_frozen: bool = True) -> None:
    """Unfreeze the top ``top_layers`` of the base (0: all). BatchNormalization of a
    pre-trained base stays frozen, as keras-io's fine-tuning recipe does, so small batches
    do not wreck its statistics."""
    base = transfer_base(model)
    if base is None:
        raise ValueError("fine-tuning needs a transfer model with a pre-trained base")
    base.trainable = True
    unfrozen = base.layers[-top_layers:] if top_layers else base.layers
    for layer in base.layers:
        is_batchnorm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = layer in unfrozen and not (keep_batchnorm_frozen and is_batchnorm)


BIAS_STEP_SCALE = 8.0
"""The BatchNorm shifts of the fast family are stored divided by this, so their steps are
its square (64) times larger than the weights': airbench's "bias scaler". The shift is all a
scale-free BatchNorm learns, and at the weights' step size it would barely move in a short run."""


@keras.saving.register_keras_serializable(package="cifarlab")
class ScaledShift(layers.Layer):
    """A per-channel shift ``scale * b``: gradient steps on b move the shift ``scale**2``
    times as far as a plain bias would. Registered, so saved models load in safe mode."""

    def __init__(self, scale: float = BIAS_STEP_SCALE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.shift = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="shift")

    def call(self, inputs: Any) -> Any:
        return inputs + self.scale * keras.ops.cast(self.shift, inputs.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


def _norm_activate(x: keras.KerasTensor, momentum: float, activation: str) -> keras.KerasTensor:
    """BatchNorm without a scale (the activation after it needs only a shift to choose its
    regime)."""
    x = FusedBatchNormalization(momentum=momentum, epsilon=1e-12, center=False, scale=False)(x)
    return layers.Activation(activation)(ScaledShift()(x))


def _fast_block(
    x: keras.KerasTensor, filters: int, momentum: float, activation: str
) -> keras.KerasTensor:
    """airbench's block: conv, pool, norm, conv, norm. Pooling right after the first conv
    makes the normalisation and activation work on a quarter of the pixels."""
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = _norm_activate(layers.MaxPooling2D()(x), momentum, activation)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    return _norm_activate(x, momentum, activation)


def _identity_start(model: keras.Model) -> None:
    """Start each 3x3 convolution's first ``inputs`` filters as the identity (the rest stay
    random): an implicit residual connection, so the fresh network passes its input through
    and the first steps refine features instead of searching for them (airbench's dirac
    init). Done on the weights, not by a custom initializer, so nothing new is serialised."""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D) and layer.kernel_size == (3, 3):
            kernel = keras.ops.convert_to_numpy(layer.kernel).copy()
            inputs = min(kernel.shape[2], kernel.shape[3])
            kernel[:, :, :, :inputs] = 0.0
            kernel[1, 1, np.arange(inputs), np.arange(inputs)] = 1.0
            layer.kernel.assign(kernel)


WHITENING_PATCH = 2
"""Side of the patches the first layer whitens; 2x2x3 patches make 12 directions."""
CIFAR10_MEAN = (125.307, 122.961, 113.8575)
CIFAR10_STD = (62.9932, 62.0887, 66.7048)
"""Per-channel pixel statistics of the CIFAR-10 training set, in 0..255."""
WHITENING_IMAGES = 5000
"""Images the whitening statistics come from: airbench's count, plenty for a 12x12 covariance."""


def build_fast_cnn(
    *,
    num_classes: int,
    widths: tuple[int, int, int],
    batchnorm_momentum: float,
    activation: str,
) -> keras.Model:
    """The fast family's network (after airbench, written for Keras), for images of any side
    from 16 px: it trains on crops in its first ``crop_epochs`` and is tested at 32.

    The first layer, named ``whitening``, is frozen; ``fit_whitening`` fills it from the
    training images before the first epoch. Its 24 filters are the 12 whitening directions
    of 2x2 patches and their negatives, so the activation after it keeps both signs. The logits
    are scaled by 1/9 before the softmax, which airbench found trains better than the usual
    scale at its large learning rate."""
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = layers.Normalization(mean=CIFAR10_MEAN, variance=[s**2 for s in CIFAR10_STD])(inputs)
    directions = 2 * 3 * WHITENING_PATCH**2
    x = layers.Conv2D(directions, WHITENING_PATCH, padding="valid", name="whitening",
                      trainable=False)(x)  # fmt: skip
    x = layers.Activation(activation)(x)
    for filters in widths:
        x = _fast_block(x, filters, batchnorm_momentum, activation)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(num_classes, use_bias=False)(x)
    x = layers.Rescaling(1.0 / 9)(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="fast_cnn")
    _identity_start(model)
    return model


def fit_whitening(model: keras.Model, images: np.ndarray, *, eps: float = 5e-4) -> None:
    """Set the frozen ``whitening`` layer from ``images`` (uint8, N x 32 x 32 x 3): each
    filter projects a normalised 2x2 patch onto one eigenvector of the patches' covariance,
    divided by the square root of its eigenvalue, so every direction comes out with unit
    variance; the negated copies follow. The bias centres the outputs."""
    layer = model.get_layer("whitening")
    normalised = (images[:WHITENING_IMAGES].astype(np.float32) - CIFAR10_MEAN) / CIFAR10_STD
    k = WHITENING_PATCH
    patches = np.lib.stride_tricks.sliding_window_view(normalised, (k, k), axis=(1, 2))
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * 3)  # (h, w, channel)
    mean = patches.mean(axis=0)
    covariance = np.cov(patches - mean, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(eigenvalues + eps)  # columns: one direction each
    kernel = np.concatenate([filters, -filters], axis=1).reshape(k, k, 3, -1)
    bias = -(mean @ np.concatenate([filters, -filters], axis=1))
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
