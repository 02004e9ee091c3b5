"""Typed hyperparameters, one class per model family; every unit is in the name or description.

The JSON schema of these classes drives the launch form and GET /api/models, so the bounds
and descriptions written here are what users see.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

CIFAR10_TRAIN_IMAGES = 50_000
CIFAR10_TEST_IMAGES = 10_000


class TrainingHyperparameters(BaseModel):
    """Settings every model shares: how long, how fast, on how much data."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(20, ge=1, le=500, description="Passes over the training data.")
    batch_size: int = Field(128, ge=1, le=4096, description="Images per gradient step.")
    learning_rate: float = Field(
        1e-3, gt=0, le=1, description="Initial step size of the Adam optimizer."
    )
    image_size: int = Field(
        32, ge=16, le=600, description="Side in pixels the 32 px images are resized to, per batch."
    )
    validation_split: float = Field(
        0.2, ge=0.05, le=0.5, description="Fraction of the training images held out, stratified."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seeds the split, subsets and weights.")
    train_size: int | None = Field(
        None,
        ge=20,
        le=CIFAR10_TRAIN_IMAGES,
        description="Use only this many training images (stratified); empty: all 50,000.",
    )
    test_size: int | None = Field(
        None,
        ge=10,
        le=CIFAR10_TEST_IMAGES,
        description="Evaluate on this many test images (stratified); empty: all 10,000.",
    )


class CustomCnnHyperparameters(TrainingHyperparameters):
    """The study's from-scratch CNN: conv blocks that double in width, then a dense head."""

    conv_blocks: int = Field(
        3, ge=1, le=5, description="Blocks of two 3x3 convolutions and a 2x2 max-pool."
    )
    filters: int = Field(
        32, ge=8, le=512, description="Convolution filters in the first block; doubles per block."
    )
    dense_units: int = Field(128, ge=8, le=4096, description="Units of the dense layer.")
    dropout_rate: float = Field(
        0.25, ge=0, le=0.9, description="Dropout after each block and before the classifier."
    )
