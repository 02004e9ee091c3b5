"""The sweeps API's read models: what ``/api/sweeps`` answers, typed so that /openapi.json
documents it, built from the services' views (``app.services.sweeps``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.models import Status, Sweep
from app.core.schemas import UtcDatetime
from app.core.sweeps import Metric, SweepSpec
from app.services.sweeps import LaunchedSweep, SweepView

SWEEP_EXAMPLE = {
    "name": "learning rate",
    "model": "custom_cnn",
    "hyperparameters": {"epochs": 2, "train_size": 500, "test_size": 200},
    "grid": {"learning_rate": [0.001, 0.003]},
    "seeds": [0, 1, 2],
    "max_parallel": 2,
}


class TrialPublic(BaseModel):
    """One trial: an ordinary experiment (``/api/experiments/{id}``) and the values the sweep
    gave it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: Status
    point: dict[str, Any] = Field(description="The varied hyperparameters' values and the seed.")
    current_epoch: int
    total_epochs: int
    best_metric: float | None = Field(description="The sweep's metric at its best epoch so far.")
    test_accuracy: float | None
    stop_reason: str | None = Field(description="Why it stopped early (pruned), in words.")
    error: str | None
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class SweepSummaryPublic(BaseModel):
    """A sweep as the list shows it: what it is, and how many of its trials stand where."""

    id: int
    name: str
    model: str
    owner_id: int | None
    owner_name: str | None
    max_parallel: int | None
    created_at: UtcDatetime
    trial_count: int = Field(description="How many trials it holds.")
    counts: dict[Status, int] = Field(description="Trials in each status; absent: none.")


class SweepsPublic(BaseModel):
    items: list[SweepSummaryPublic]
    total: int


class SweepCreatedPublic(SweepSummaryPublic):
    experiment_ids: list[int] = Field(description="The trials, in launch order.")
    sent: int = Field(
        description="Trials sent to the workers now; the rest wait for `max_parallel`."
    )


class SweepPublic(SweepSummaryPublic):
    """A sweep with its spec and every trial, the best so far and the time left."""

    spec: SweepSpec
    metric: Metric = Field(description="What `best_metric` and `best` rank by.")
    varied: list[str] = Field(description="The hyperparameters it varies (grid, then random).")
    trials: list[TrialPublic] = Field(description="Its trials, in launch order.")
    best: TrialPublic | None
    eta_seconds: float | None = Field(
        description="Time left at the pace of the trials finished so far; null until one has."
    )


class SweepTrialIdsPublic(BaseModel):
    """What a cancel or a retry of a sweep touched."""

    id: int
    experiment_ids: list[int]


def _summary_fields(sweep: Sweep, counts: dict[Status, int]) -> dict[str, Any]:
    return {
        "id": sweep.id,
        "name": sweep.name,
        "model": sweep.model,
        "owner_id": sweep.owner_id,
        "owner_name": sweep.owner.username if sweep.owner else None,
        "max_parallel": sweep.max_parallel,
        "created_at": sweep.created_at,
        "trial_count": sum(counts.values()),
        "counts": counts,
    }


def summary(sweep: Sweep, counts: dict[Status, int]) -> SweepSummaryPublic:
    return SweepSummaryPublic(**_summary_fields(sweep, counts))


def created(launched: LaunchedSweep) -> SweepCreatedPublic:
    counts = {Status.queued: len(launched.experiment_ids)}
    return SweepCreatedPublic(
        **_summary_fields(launched.sweep, counts),
        experiment_ids=launched.experiment_ids,
        sent=launched.sent,
    )


def detail(view: SweepView) -> SweepPublic:
    return SweepPublic(
        **_summary_fields(view.sweep, view.counts),
        spec=view.spec,
        metric=view.spec.pruning.metric,
        varied=view.spec.varied,
        trials=[TrialPublic.model_validate(t) for t in view.trials],
        best=None if view.best is None else TrialPublic.model_validate(view.best),
        eta_seconds=view.eta_seconds,
    )


def trial_ids(sweep: Sweep, ids: Sequence[int]) -> SweepTrialIdsPublic:
    return SweepTrialIdsPublic(id=sweep.id, experiment_ids=list(ids))


def sweep_links() -> dict[int | str, dict[str, Any]]:
    """OpenAPI links from a launched sweep to what exists as soon as it does, as
    ``app.core.schemas.CREATED_EXPERIMENT`` does for an experiment."""
    operations = {
        "GetSweep": "get_sweep_api_sweeps__sweep_id__get",
        "CancelSweep": "cancel_sweep_api_sweeps__sweep_id__cancel_post",
        "RetrySweep": "retry_sweep_api_sweeps__sweep_id__retry_post",
    }
    links = {
        name: {"operationId": operation, "parameters": {"sweep_id": "$response.body#/id"}}
        for name, operation in operations.items()
    }
    return {201: {"description": "Created", "links": links}}
