"""Pydantic schemas: the experiment spec every client shares, and the public read models."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

from app.core.cifar10 import CLASS_COUNT
from app.core.hyperparameters import TrainingHyperparameters
from app.core.models import INTEGER_MAX, Status
from app.core.zoo import MODELS

logger = logging.getLogger(__name__)

# What ``str.strip()`` removes, spelled out: regex engines disagree on ``\s`` (JavaScript's
# lacks U+0085, Python's has U+001C-U+001F), and ``pattern`` must tell clients exactly which
# names the stripping leaves empty.
_STRIPPED = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Zero-width characters print nothing, so a name of them alone looks blank in every list.
_ZERO_WIDTH = r"\u180e\u200b-\u200d\u2060\ufeff"
# A name or tag is one line: a line break or other control character inside one split the
# CLI's `show` and the tables' cells.
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
NAME_PATTERN = f"^[^{_CONTROL}]*[^{_STRIPPED}{_ZERO_WIDTH}{_CONTROL}][^{_CONTROL}]*$"
"""One line with something visible in it."""
TAG_PATTERN = f"^[^,{_CONTROL}]*[^,{_STRIPPED}{_ZERO_WIDTH}{_CONTROL}][^,{_CONTROL}]*$"
"""A name's rule, and no comma: forms and the CLI write tags comma-separated, so a tag holding
one came back from its edit box as two."""
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40, pattern=TAG_PATTERN)
]


def _distinct(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], AfterValidator(_distinct)]
"""A run's tags, each once, in the order given: a tag is a label, not a count."""
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NAME_PATTERN),
]
RowId = Annotated[int, Ge(1), Le(INTEGER_MAX)]
"""An experiment id in a path or query: out of range is a 422, not the driver's overflow."""
Count = Annotated[int, Ge(0), Le(INTEGER_MAX)]
"""An offset or epoch number a client sends."""
ClassIndex = Annotated[int, Ge(0), Le(CLASS_COUNT - 1)]
"""A row or column of a run's confusion matrix."""


def _as_utc(value: datetime) -> datetime:
    """SQLite hands back timestamps without their zone; every stored one is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class ExperimentSpec(BaseModel):
    """Fields every spec has; ``model`` picks which hyperparameter class applies."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model: str
    tags: Tags = Field(default_factory=list, max_length=20)
    dataset: Literal["cifar10"] = "cifar10"
    hyperparameters: TrainingHyperparameters


def _spec_class(model_name: str, hyperparameters: type[BaseModel]) -> type[ExperimentSpec]:
    return create_model(
        f"{model_name}_spec",
        __base__=ExperimentSpec,
        model=(Literal[model_name], ...),  # type: ignore[arg-type]
        hyperparameters=(hyperparameters, Field(default_factory=hyperparameters)),
    )


SPEC_CLASSES: dict[str, type[ExperimentSpec]] = {
    name: _spec_class(name, info.hyperparameters) for name, info in MODELS.items()
}


def parse_spec(data: Any) -> ExperimentSpec:
    """Validate a spec from any client; raises ``SpecError`` naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError([FieldError(field="spec", message="expected a JSON object")])
    model = data.get("model")
    spec_class = SPEC_CLASSES.get(model)  # type: ignore[arg-type]
    if spec_class is None:
        known = ", ".join(sorted(SPEC_CLASSES))
        said = "no model given" if model is None else f"unknown model {model!r}"
        raise SpecError([FieldError(field="model", message=f"{said}; choose one of: {known}")])
    try:
        return spec_class.model_validate(data)
    except ValidationError as exc:
        raise SpecError.from_validation_error(exc) from None


IMPORTED_MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
SETTING_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
COMPARED_IDS_PATTERN = r"^\s*\d{1,10}(\s*,\s*\d{1,10})+\s*$"
PATTERN_WORDS = {
    NAME_PATTERN: "write a name on one line, with something visible in it (no line breaks, "
    "tabs or other control characters)",
    TAG_PATTERN: "write a tag on one line, with something visible in it and no comma (commas "
    "separate tags)",
    IMPORTED_MODEL_PATTERN: "use letters, digits, '_', '.' and '-', starting with a letter or "
    "a digit (vgg16, efficientnet_b2)",
    SETTING_NAME_PATTERN: "use letters, digits and '_', not starting with a digit (learning_rate)",
    COMPARED_IDS_PATTERN: "give two or more experiment ids, comma-separated: 1,2",
}
"""What each pattern of the API asks for, in words: its schema keeps the regex for clients,
and a refusal says this instead of repeating the regex."""


def error_message(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors as a person reads it: an unknown field and a string of the
    wrong form say what to do, and a validator's own message comes without pydantic's "Value
    error, " before it; other messages (out of range, too long) already read well."""
    context = error.get("ctx") or {}
    if error["type"] == "extra_forbidden":
        return "unknown field; remove it or check its spelling"
    if error["type"] == "string_pattern_mismatch" and context.get("pattern") in PATTERN_WORDS:
        return PATTERN_WORDS[context["pattern"]]
    if error["type"] == "value_error" and "error" in context:
        return str(context["error"])
    return str(error["msg"])


class FieldError(BaseModel):
    field: str
    message: str


class ErrorPublic(BaseModel):
    """Every refusal: what happened and what to do, in words."""

    detail: str


class ValidationErrorPublic(ErrorPublic):
    """A 422: ``detail`` joins the ``errors``, each naming its field (``hyperparameters.epochs``,
    ``tags.0``)."""

    errors: list[FieldError]


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
            errors.append(FieldError(field=field, message=error_message(error)))
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
    owner_id: int | None
    owner_name: str | None
    status: Status
    spec: dict[str, Any]
    error: str | None
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    # Time inside epochs (the sum of their seconds): how long the run trained.
    training_seconds: float | None
    # Started to finished: includes queueing and idle time between attempts, and evaluation.
    wall_clock_seconds: float | None
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
    stop_reason: str | None = None  # why a sweep's rule pruned it ("pruned at epoch 3 because")
    queue_position: int | None = None
    sweep_id: int | None = None  # the sweep that launched it
    # The highest validation accuracy over its epochs: lists fill it in, one query a page.
    best_val_accuracy: float | None = None


def summaries(rows: Iterable[Any]) -> list[ExperimentSummary]:
    """Rows as lists show them. A row that cannot be shown (a bad value written by an older
    version, or by hand) is logged and left out, so one row never takes a whole list down."""
    shown = []
    for row in rows:
        try:
            shown.append(ExperimentSummary.model_validate(row))
        except ValidationError:
            logger.exception("experiment %s cannot be listed; left out", row.id)
    return shown


class ExperimentPublic(ExperimentSummary):
    model_layers: list[dict[str, Any]] | None
    # What a running attempt is doing ("loading_data", "train", "fine_tune", "evaluating");
    # null once it is not running: the last attempt's phase stays in the row, but a finished
    # run is not "evaluating".
    run_phase: str | None = None
    # The last heartbeat's CPU, memory and GPU readings (app.core.telemetry.Telemetry).
    telemetry: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _phase_only_while_running(self) -> ExperimentPublic:
        if self.status is not Status.running:
            self.run_phase = None
        return self


class TimeToAccuracyPublic(BaseModel):
    """The first epoch that reached ``threshold`` validation accuracy and the training seconds
    up to and including it; both null when the run never did."""

    model_config = ConfigDict(from_attributes=True)

    threshold: float
    epoch: int | None
    training_seconds: float | None


class ExperimentDetail(ExperimentPublic):
    """GET /api/experiments/{id}: the experiment and its time to each validation accuracy of
    ``app.core.time_to_accuracy.THRESHOLDS``, read from its epochs."""

    time_to_accuracy: list[TimeToAccuracyPublic]


class ExperimentUpdate(BaseModel):
    """What people may annotate after the fact; results never change. A field left out
    keeps its value; null is refused (it is no name, no tag list, no note)."""

    model_config = ConfigDict(extra="forbid")

    # A default of None on a type without None: unset is allowed (``exclude_unset`` drops
    # it), null is not, and the schema says so; a union with None made every error twice.
    name: Name = Field(default=None)  # type: ignore[assignment]
    tags: Tags = Field(default=None, max_length=20)  # type: ignore[arg-type]
    notes: str = Field(default=None, max_length=10_000)  # type: ignore[assignment]

    @field_validator("name", "tags", "notes", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


ImportedModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=IMPORTED_MODEL_PATTERN)
]
"""A zoo model (``efficientnet_b2``) or any other a result came from (``vgg16``)."""
SettingName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=SETTING_NAME_PATTERN)
]
MAX_SETTING_TEXT = 200


def _setting_value(value: Any) -> Any:
    """One check, one message: as a union of five types, a bad value was refused five times
    over, once per type (``hyperparameters.x.constrained-str``, ``.int``, ...)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and len(value) <= MAX_SETTING_TEXT:
        return value
    raise ValueError(
        f"give a number, true or false, or text of at most {MAX_SETTING_TEXT} characters"
    )


SettingValue = Annotated[
    Any,
    PlainValidator(_setting_value),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": MAX_SETTING_TEXT}, {"type": "integer"},
                   {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}
    ),
]  # fmt: skip
MAX_IMPORTED_SETTINGS = 100


class ReportImport(BaseModel):
    """A scikit-learn classification_report pasted as text, optionally with its matrix, and
    optionally the model and settings that produced it: then the list's model filter and
    hyperparameter columns find it beside trained runs."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    report_text: str = Field(min_length=1, max_length=100_000)
    confusion_matrix_text: str | None = Field(default=None, max_length=100_000)
    tags: Tags = Field(default_factory=list, max_length=20)
    notes: str = Field(default="", max_length=10_000)
    model: ImportedModelName | None = Field(
        default=None, description="The model that produced the report, e.g. `efficientnet_b2`"
    )
    hyperparameters: dict[SettingName, SettingValue] = Field(
        default_factory=dict,
        max_length=MAX_IMPORTED_SETTINGS,
        description='Its settings, e.g. `{"epochs": 20, "learning_rate": 0.001}`',
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorPublic, "description": "The body is not text FastAPI can decode"},
    401: {"model": ErrorPublic, "description": "Sign in first (accounts exist)"},
    403: {"model": ErrorPublic, "description": "Not yours to change, or a cross-site request"},
    404: {"model": ErrorPublic, "description": "No such experiment (or file, or preset)"},
    409: {"model": ErrorPublic, "description": "Not in a state that allows this"},
    413: {"model": ErrorPublic, "description": "Request body too large"},
    422: {
        "model": ValidationErrorPublic,
        "description": "Invalid input, each error naming a field",
    },
    429: {"model": ErrorPublic, "description": "Too many requests or over a quota; retry later"},
}
"""What any API route may answer besides success, documented once for all of them."""


def _experiment_links() -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a 201 to what exists as soon as an experiment does (not its model,
    evaluation or test images, which come with training): clients and Schemathesis's
    stateful phase follow them."""
    operations = {
        "GetExperiment": "get_experiment_api_experiments__experiment_id__get",
        "UpdateExperiment": "update_experiment_api_experiments__experiment_id__patch",
        "GetMetrics": "get_metrics_api_experiments__experiment_id__metrics_get",
        "CancelExperiment": "cancel_experiment_api_experiments__experiment_id__cancel_post",
        "RetryExperiment": "retry_experiment_api_experiments__experiment_id__retry_post",
        "DeleteExperiment": "delete_experiment_api_experiments__experiment_id__delete",
    }
    links = {
        name: {"operationId": operation, "parameters": {"experiment_id": "$response.body#/id"}}
        for name, operation in operations.items()
    }
    return {201: {"description": "Created", "links": links}}


CREATED_EXPERIMENT = _experiment_links()


class ExperimentsPublic(BaseModel):
    items: list[ExperimentSummary]
    total: int


BULK_LIMIT = 1000
"""Experiments one bulk request may name: a sweep's trials, a few pages of the table."""


class BulkRequest(BaseModel):
    """One action on the runs table's selection (``app.services.bulk``)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[RowId] = Field(min_length=1, max_length=BULK_LIMIT)
    action: Literal["tag", "cancel", "delete"]
    tag: Tag | None = Field(
        default=None, validate_default=True, description="The tag to add; with `tag` only"
    )

    @field_validator("tag")
    @classmethod
    def _tag_with_tagging(cls, value: str | None, info: ValidationInfo) -> str | None:
        action = info.data.get("action")
        if action == "tag" and value is None:
            raise ValueError("required with action tag")
        if action not in (None, "tag") and value is not None:
            raise ValueError(f"only with action tag, not {action}")
        return value


class BulkResultPublic(BaseModel):
    id: int
    outcome: Literal["done", "unchanged", "forbidden", "not_found", "conflict", "invalid"]
    detail: str


class BulkResultsPublic(BaseModel):
    results: list[BulkResultPublic]


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
    # "none": each test image predicted once; "flip": the mean with its mirror image's;
    # "flip_translate": also with 1-pixel shifts of both (worker/tta.py).
    test_time_augmentation: str = "none"


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
    started_at: UtcDatetime
    last_seen_at: UtcDatetime
    restarts: int  # by `cifarlab up`, after the worker died
    last_exit: str | None  # how it died the last time: "killed by SIGKILL"
    running: ExperimentSummary | None
    # The running experiment's last heartbeat readings in words, one line per device.
    resources: list[str] = []


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: str
    broker: str
    workers: list[str]
