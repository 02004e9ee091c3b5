"""What one training image costs each model of the zoo, relative to the others.

Time estimates (``app.services.estimates``) measure a worker's speed on the runs it has
finished and carry it to a spec by this cost: the measured images per second times the cost
of what was trained is the worker's rate, and the rate over the new spec's cost is its
images per second. Only ratios matter, so the figures need to be right in proportion, not
exactly.

``MACS_PER_32PX_IMAGE``: multiply-accumulates of one forward pass of a 32 x 32 image, at the
model's default hyperparameters.

- ``custom_cnn``: counted from ``worker/architectures.py`` at its defaults (3 blocks of two
  3x3 convolutions, 32 filters doubling per block, 2x2 pooling, dense 128): 38.9 M.
- ``residual_cnn``: counted the same way (a 3x3 stem, 3 stages of 2 blocks of two 3x3
  convolutions, width 32 doubling per stage, 1x1 projection shortcuts): 105.7 M.
- ``fast_cnn``: counted the same way at its defaults (a 2x2 whitening conv to 24 channels at
  31 px, then blocks of 64, 256 and 256 filters, each a 3x3 conv before and after a 2x2
  pool): 118.1 M.
- Pre-trained bases: the papers' multiply-adds ("FLOPs") at their ImageNet resolution,
  scaled to 32 px by pixels, ``macs * (32 / resolution) ** 2``; the study's head adds little.
  EfficientNetB0-B4: 0.39 G at 224, 0.70 G at 240, 1.0 G at 260, 1.8 G at 300, 4.2 G at 380
  (Tan & Le 2019, Table 2). EfficientNetV2B0: 0.72 G at 224 (timm's tf_efficientnetv2_b0).
  ResNet50V2: 4.1 G at 224 (timm's resnetv2_50). MobileNetV2: 0.30 G at 224 (Sandler et al.
  2018, Table 4). ConvNeXtTiny: 4.5 G at 224 (Liu et al. 2022, Table 1).

The from-scratch families are counted from each spec's own widths and depths by the same
rules (``macs_per_32px_image``); the table keeps their defaults. Left out, on purpose: batch
size, mixed precision and XLA. Runs of the same model on the same worker, which the estimate
prefers, carry those in their measurement as long as they were launched alike.
"""

from __future__ import annotations

from app.core.hyperparameters import (
    CustomCnnHyperparameters,
    FastCnnHyperparameters,
    ResidualCnnHyperparameters,
    TrainingHyperparameters,
)

MACS_PER_32PX_IMAGE: dict[str, float] = {
    "custom_cnn": 38.9e6,
    "residual_cnn": 105.7e6,
    "fast_cnn": 118.1e6,
    "efficientnet_b0": 7.96e6,
    "efficientnet_b1": 12.4e6,
    "efficientnet_b2": 15.1e6,
    "efficientnet_b3": 20.5e6,
    "efficientnet_b4": 29.8e6,
    "efficientnetv2_b0": 14.7e6,
    "resnet50v2": 83.7e6,
    "mobilenet_v2": 6.12e6,
    "convnext_tiny": 91.8e6,
}

TRAINING_PASSES = 3.0
"""A training step's work in forward passes: the forward pass, then a backward pass that
costs about two (gradients for the activations and for the weights)."""

FROZEN_BASE_PASSES = 1.0
"""With the base frozen, the backward pass stops at the small head: about one forward pass."""


def _conv(side: float, inputs: float, outputs: float, kernel: int = 3) -> float:
    return side * side * inputs * outputs * kernel * kernel


def _custom_cnn(hp: CustomCnnHyperparameters) -> float:
    side, inputs, total = 32.0, 3.0, 0.0
    for block in range(hp.conv_blocks):
        width = hp.filters * 2**block
        total += _conv(side, inputs, width) + _conv(side, width, width)
        side, inputs = side / 2, width
    return total + side * side * inputs * hp.dense_units + hp.dense_units * 10


def _residual_cnn(hp: ResidualCnnHyperparameters) -> float:
    side, inputs = 32.0, float(hp.width)
    total = _conv(side, 3, hp.width)
    for stage in range(hp.stages):
        width = hp.width * 2**stage
        for block in range(hp.blocks_per_stage):
            if stage > 0 and block == 0:
                side /= 2
            if inputs != width or (stage > 0 and block == 0):
                total += _conv(side, inputs, width, kernel=1)  # the projection shortcut
            total += _conv(side, inputs, width) + _conv(side, width, width)
            inputs = width
    return float(total + inputs * 10)


def _fast_cnn(hp: FastCnnHyperparameters) -> float:
    side, inputs = 31.0, 24.0  # after the 2x2 whitening
    total = _conv(31, 3, 24, kernel=2)
    for width in (hp.width_1, hp.width_2, hp.width_3):
        total += _conv(side, inputs, width)
        side = side // 2
        total += _conv(side, width, width)
        inputs = width
    return total + inputs * 10


def macs_per_32px_image(model: str, hp: TrainingHyperparameters) -> float:
    """Counted from the spec for the from-scratch families, whose width and depth it sets
    (the fast family's widths change its cost fourfold between 128 and 256); the table's figure
    for a pre-trained base, whose architecture is fixed."""
    if isinstance(hp, FastCnnHyperparameters):
        return _fast_cnn(hp)
    if isinstance(hp, ResidualCnnHyperparameters):
        return _residual_cnn(hp)
    if isinstance(hp, CustomCnnHyperparameters):
        return _custom_cnn(hp)
    return MACS_PER_32PX_IMAGE[model]


def trained_side(hp: TrainingHyperparameters, epoch: int) -> int:
    """The side in pixels of the images epoch ``epoch`` (from 1) trains on: the fast family's
    crops in its first ``crop_epochs``, else the spec's image size."""
    if isinstance(hp, FastCnnHyperparameters) and epoch <= hp.crop_epochs:
        return hp.crop_size
    return hp.image_size


def training_cost(
    model: str, hp: TrainingHyperparameters, *, frozen_base: bool, side: int
) -> float:
    """Multiply-accumulates to train on one image of ``side`` pixels: convolutions scale with
    the pixels."""
    passes = FROZEN_BASE_PASSES if frozen_base else TRAINING_PASSES
    return macs_per_32px_image(model, hp) * (side / 32) ** 2 * passes
