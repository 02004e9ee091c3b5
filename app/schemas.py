"""Pydantic schemas: the experiment spec every client shares, and the public read models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from app.hyperparameters import TrainingHyperparameters
from app.zoo import MODELS

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ExperimentSpec(BaseModel):
    """Fields every spec has; ``model`` picks which hyperparameter class applies."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model: str
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    dataset: Literal["cifar10"] = "cifar10"
    hyperparameters: TrainingHyperparameters


def _spec_class(model_name: str, hyperparameters: type[BaseModel]) -> type[ExperimentSpec]:
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{model_name}_spec",
        __base__=ExperimentSpec,
        model=(Literal[model_name], ...),  # type: ignore[arg-type, valid-type]
        hyperparameters=(hyperparameters, Field(default_factory=hyperparameters)),
    )


SPEC_CLASSES: dict[str, type[ExperimentSpec]] = {
    name: _spec_class(name, info.hyperparameters) for name, info in MODELS.items()
}


def parse_spec(data: Any) -> ExperimentSpec:
    """Validate a spec from any client; raises ``SpecError`` naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError([FieldError(field="spec", message="expected a JSON object")])
    spec_class = SPEC_CLASSES.get(data.get("model"))  # type: ignore[arg-type]
    if spec_class is None:
        known = ", ".join(sorted(SPEC_CLASSES))
        message = f"unknown model {data.get('model')!r}; choose one of: {known}"
        raise SpecError([FieldError(field="model", message=message)])
    try:
        return spec_class.model_validate(data)
    except ValidationError as exc:
        raise SpecError.from_validation_error(exc) from None


class FieldError(BaseModel):
    field: str
    message: str


class SpecError(ValueError):
    """A spec that cannot run; ``errors`` say which field and how to fix it."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> SpecError:
        errors = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "spec"
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field; remove it or check its spelling"
            errors.append(FieldError(field=field, message=message))
        return cls(errors)


class ExperimentSummary(BaseModel):
    """An experiment as lists show it: everything but its layer table, which runs to
    hundreds of rows for a transfer model and is read on the experiment's own page."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    model: str
    tags: list[str]
    notes: str
    owner_name: str | None
    status: str
    spec: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    worker_name: str | None
    worker_host: str | None
    device: str | None
    current_epoch: int
    total_epochs: int
    epoch_progress: float
    parameters: int | None
    trainable_parameters: int | None
    test_accuracy: float | None
    macro_f1: float | None
    attempts: int
    interruption: str | None  # why the last run was cut short (its worker was killed, ...)
    queue_position: int | None = None


class ExperimentPublic(ExperimentSummary):
    model_layers: list[dict[str, Any]] | None


class ExperimentUpdate(BaseModel):
    """What people may annotate after the fact; results never change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)
    notes: str | None = Field(default=None, max_length=10_000)


class ReportImport(BaseModel):
    """A scikit-learn classification_report pasted as text, optionally with its matrix."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    report_text: str = Field(min_length=1, max_length=100_000)
    confusion_matrix_text: str | None = Field(default=None, max_length=100_000)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    notes: str = Field(default="", max_length=10_000)


class ExperimentsPublic(BaseModel):
    items: list[ExperimentSummary]
    total: int


class EpochMetricPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    phase: str
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float | None
    seconds: float | None
    images_per_second: float | None


class MetricsPublic(BaseModel):
    epochs: list[EpochMetricPublic]


class EvaluationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    accuracy: float
    test_size: int
    classes: list[str]
    confusion_matrix: list[list[int]] | None
    report: dict[str, Any]


class ModelPublic(BaseModel):
    name: str
    title: str
    family: str
    description: str
    hyperparameters_schema: dict[str, Any]


class WorkerPublic(BaseModel):
    name: str
    hostname: str
    pid: int
    device: str
    started_at: datetime
    last_seen_at: datetime
    restarts: int  # by `cifarlab up`, after the worker died
    last_exit: str | None  # how it died the last time: "killed by SIGKILL"
    running: ExperimentSummary | None


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    workers: list[str]
