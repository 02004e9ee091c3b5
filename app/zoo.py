"""The model zoo: every model a user can launch, with its hyperparameter class."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from app.hyperparameters import CustomCnnHyperparameters


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    family: str
    description: str
    hyperparameters: type[BaseModel]


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
    )
}
