"""build_* functions: one per model family, each returning an uncompiled Functional model.

Every model takes float32 pixels in 0..255 and rescales itself, so one data pipeline
serves from-scratch and pre-trained models alike.
"""

from __future__ import annotations

import keras
from keras import layers


def build_custom_cnn(
    *,
    num_classes: int,
    image_size: int,
    conv_blocks: int,
    filters: int,
    dense_units: int,
    dropout_rate: float,
) -> keras.Model:
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / 255)(inputs)
    for block in range(conv_blocks):
        width = filters * 2**block
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, activation="relu")(x)
    x = layers.Dropout(dropout_rate)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="custom_cnn")
