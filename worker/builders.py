"""From a spec to a Keras model: the right builder, its weights, or a warm start."""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from app.core.cifar10 import CLASS_COUNT
from app.core.config import Settings
from app.core.hyperparameters import (
    CustomCnnHyperparameters,
    FastCnnHyperparameters,
    ResidualCnnHyperparameters,
    TransferHyperparameters,
)
from app.core.schemas import ExperimentSpec
from worker.architectures import (
    APPLICATIONS,
    build_custom_cnn,
    build_fast_cnn,
    build_residual_cnn,
    build_transfer,
    fit_whitening,
)
from worker.weights import resolve_weights


def _custom_cnn(spec: ExperimentSpec, _settings: Settings) -> keras.Model:
    hp = spec.hyperparameters
    if not isinstance(hp, CustomCnnHyperparameters):
        raise TypeError(f"custom_cnn needs CustomCnnHyperparameters, got {type(hp).__name__}")
    return build_custom_cnn(
        num_classes=CLASS_COUNT, image_size=hp.image_size, conv_blocks=hp.conv_blocks,
        filters=hp.filters, batch_norm=hp.batch_norm, dense_units=hp.dense_units,
        dropout_rate=hp.dropout_rate,
    )  # fmt: skip


def _residual_cnn(spec: ExperimentSpec, _settings: Settings) -> keras.Model:
    hp = spec.hyperparameters
    if not isinstance(hp, ResidualCnnHyperparameters):
        raise TypeError(f"residual_cnn needs ResidualCnnHyperparameters, got {type(hp).__name__}")
    return build_residual_cnn(
        num_classes=CLASS_COUNT, image_size=hp.image_size, width=hp.width, stages=hp.stages,
        blocks_per_stage=hp.blocks_per_stage, dropout_rate=hp.dropout_rate,
    )  # fmt: skip


def _fast_cnn(spec: ExperimentSpec, _settings: Settings) -> keras.Model:
    hp = spec.hyperparameters
    if not isinstance(hp, FastCnnHyperparameters):
        raise TypeError(f"fast_cnn needs FastCnnHyperparameters, got {type(hp).__name__}")
    return build_fast_cnn(
        num_classes=CLASS_COUNT, widths=(hp.width_1, hp.width_2, hp.width_3),
        batchnorm_momentum=hp.batchnorm_momentum, activation=hp.activation,
    )  # fmt: skip


def _transfer(spec: ExperimentSpec, settings: Settings) -> keras.Model:
    hp = spec.hyperparameters
    if not isinstance(hp, TransferHyperparameters):
        raise TypeError(f"{spec.model} needs TransferHyperparameters, got {type(hp).__name__}")
    weights_path = None
    if hp.weights == "imagenet":
        weights_path = resolve_weights(spec.model, hp.image_size, settings.weights_dir)
    return build_transfer(
        application=spec.model, num_classes=CLASS_COUNT, image_size=hp.image_size,
        weights_path=weights_path, head_units=hp.head_units,
        head_dropout_rate=hp.head_dropout_rate, head_units_2=hp.head_units_2, head_l2=hp.head_l2,
    )  # fmt: skip


ModelBuilder = Callable[[ExperimentSpec, Settings], keras.Model]
BUILDERS: dict[str, ModelBuilder] = {
    "custom_cnn": _custom_cnn,
    "residual_cnn": _residual_cnn,
    "fast_cnn": _fast_cnn,
    **dict.fromkeys(APPLICATIONS, _transfer),
}


def build_model(
    spec: ExperimentSpec, settings: Settings, train_images: np.ndarray | None = None
) -> keras.Model:
    """A fresh model; ``train_images`` fill the layers that are set from data rather than
    learned (the fast family's whitening), which keep their initial values without them."""
    builder = BUILDERS.get(spec.model)
    if builder is None:
        raise ValueError(f"this worker has no builder for model {spec.model!r}; upgrade it")
    model = builder(spec, settings)
    if train_images is not None and spec.model == "fast_cnn":
        fit_whitening(model, train_images)
    return model


def load_warm_start(path: str, spec: ExperimentSpec) -> keras.Model:
    """Another experiment's trained model, checked to fit this spec's input and classes.

    Loaded with Keras's safe mode on: a model file never runs code it carries."""
    model = keras.models.load_model(path, safe_mode=True)
    hp = spec.hyperparameters
    size = hp.image_size
    expected_in, expected_out = (None, size, size, 3), (None, CLASS_COUNT)
    takes = tuple(model.input_shape)
    any_size = takes == (None, None, None, 3)  # the fast family
    if not (any_size or takes == expected_in) or tuple(model.output_shape) != expected_out:
        raise ValueError(
            f"warm start model takes {model.input_shape} and gives {model.output_shape}, but this "
            f"spec needs {expected_in} -> {expected_out}: launch with image_size matching the "
            "experiment you start from"
        )
    if isinstance(hp, FastCnnHyperparameters) and hp.crop_epochs and not any_size:
        raise ValueError(
            f"warm start model takes only {size} px images (saved before the fast family took "
            "crops): launch with crop_epochs 0 to continue it"
        )
    return model
