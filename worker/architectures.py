"""build_* functions: one per model family, each returning an uncompiled Functional model.

Every model takes float32 pixels in 0..255 and applies its own family's preprocessing, so one
data pipeline serves from-scratch and pre-trained models alike. Classifiers output float32
probabilities even under mixed precision, for a numerically stable loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers
from keras.src.applications import convnext, efficientnet, efficientnet_v2, mobilenet_v2, resnet


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
