"""The model zoo: every model a user can launch, with its hyperparameter class.

This module is read by the web process, so it names models without importing Keras; the
worker maps each name to its builder in ``worker/architectures.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from app.core.hyperparameters import (
    CustomCnnHyperparameters,
    FastCnnHyperparameters,
    ResidualCnnHyperparameters,
    TransferHyperparameters,
)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    family: str
    description: str
    hyperparameters: type[BaseModel]


def _transfer(name: str, title: str, description: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        title=f"{title} (transfer learning)",
        family="transfer",
        description=f"{description} Pre-trained base with the study's head: global average "
        "pooling, Dense 128, Dropout 0.2, Dense 256 with L2 0.001, softmax.",
        hyperparameters=TransferHyperparameters,
    )


_EFFICIENTNET = "EfficientNet (Tan & Le, 2019); rescales pixels inside the model."

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in (
        ModelInfo(
            name="custom_cnn",
            title="Custom CNN (from scratch)",
            family="from_scratch",
            description="Stacked conv blocks with max-pooling and dropout, then a dense head; "
            "the original study's from-scratch baseline.",
            hyperparameters=CustomCnnHyperparameters,
        ),
        ModelInfo(
            name="residual_cnn",
            title="Residual CNN (from scratch)",
            family="from_scratch",
            description="A small ResNet with BatchNorm and augmentation, built to go well past "
            "the study's custom CNN.",
            hyperparameters=ResidualCnnHyperparameters,
        ),
        ModelInfo(
            name="fast_cnn",
            title="Fast CNN (from scratch, after airbench)",
            family="from_scratch",
            description="A whitened, BatchNorm-GELU network with Nesterov SGD on a triangular "
            "schedule, label smoothing, an average of the weights, alternating flips and a "
            "mirrored look at test time: the ideas of the fastest CIFAR-10 trainers, at 32 px "
            "after optional first epochs on smaller crops.",
            hyperparameters=FastCnnHyperparameters,
        ),
        _transfer("efficientnet_b0", "EfficientNetB0", _EFFICIENTNET),
        _transfer("efficientnet_b1", "EfficientNetB1", _EFFICIENTNET),
        _transfer("efficientnet_b2", "EfficientNetB2", _EFFICIENTNET + " The study's choice."),
        _transfer("efficientnet_b3", "EfficientNetB3", _EFFICIENTNET),
        _transfer("efficientnet_b4", "EfficientNetB4", _EFFICIENTNET + " In the study too."),
        _transfer(
            "efficientnetv2_b0", "EfficientNetV2B0", "EfficientNetV2 (2021): faster training."
        ),
        _transfer("resnet50v2", "ResNet50V2", "ResNet v2 with pre-activation blocks."),
        _transfer("mobilenet_v2", "MobileNetV2", "Small and fast; good for quick runs."),
        _transfer("convnext_tiny", "ConvNeXtTiny", "ConvNeXt (2022): a modern ConvNet."),
    )
}
