"""Sweeps: launching a set of trials at once, reading how they stand, cancelling and retrying.

The same calls serve the launch form, ``POST /api/sweeps`` and ``cifarlab sweep``. A sweep is
validated whole (``app.core.sweeps.expand``) and stored whole, then its trials go to the
outbox: the first ``max_parallel`` are sent now, the rest as earlier ones finish (the cap is
part of the outbox's send condition, ``crud._below_sweep_cap``), so a sweep never floods the
workers and nothing is lost if the broker is down when it is launched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import EpochMetric, Experiment, Status, Sweep
from app.core.schemas import FieldError, SpecError
from app.core.sweeps import MAX_ERRORS, SweepSpec, Trial, expand, parse_sweep
from app.services import outbox
from app.services.errors import Conflict, NotFound
from app.services.launch import WARM_START, BrokerUnavailable, warm_start_refusal
from app.services.quotas import ACTIVE_RETRY_AFTER_SECONDS, QuotaExceeded
from app.services.retry import RETRYABLE, retry


@dataclass(frozen=True)
class LaunchedSweep:
    sweep: Sweep
    experiment_ids: list[int]
    sent: int
    """Trials the broker took now; the others wait for the cap, or for the broker."""


def _check_quota(session: Session, owner_id: int | None, slots: int) -> None:
    """A sweep takes at most ``max_parallel`` workers at once, so that is what counts against
    the per-user limit on active experiments; a sweep without a cap counts every trial."""
    limit = get_settings().max_active_experiments_per_user
    if not limit:
        return
    active = crud.active_experiments(session=session, owner_id=owner_id)
    if active + slots > limit:
        raise QuotaExceeded(
            f"this sweep would run {slots} trials at once beside the {active} experiments "
            f"already queued or running for this user, past the limit of {limit} "
            f"(CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER); set max_parallel to at most "
            f"{max(limit - active, 1)}, or wait for runs to finish",
            ACTIVE_RETRY_AFTER_SECONDS,
        )


def send_waiting(session: Session, experiment_ids: Sequence[int]) -> int:
    """Send trials in order until the sweep's cap or the broker stops it; the outbox's loop
    sends the rest later. Returns how many the broker took."""
    sent = 0
    for experiment_id in experiment_ids:
        if not outbox.send(session, experiment_id):
            break
        if not crud.is_enqueued(session=session, experiment_id=experiment_id):
            break  # the cap is full (or another process is sending): the rest wait too
        sent += 1
    return sent


def _reference_errors(session: Session, trials: Sequence[Trial]) -> list[FieldError]:
    """Each trial's warm start checked as a single launch checks it (``warm_start_refusal``),
    named where the sweep wrote the value at fault: the varied setting among those the
    source disagrees with (``grid.warm_start_experiment_id[1]``, ``grid.image_size[0]``),
    else the base's field. Each refusal is said once; each source is read once."""
    errors: dict[str, FieldError] = {}
    seen: set[tuple[Any, ...]] = set()
    for trial in trials:
        hp = trial.spec.hyperparameters
        key = (hp.warm_start_experiment_id, hp.image_size, trial.origin(WARM_START),
               trial.origin("image_size"))  # fmt: skip
        if hp.warm_start_experiment_id is None or key in seen:
            continue
        seen.add(key)
        if (refusal := warm_start_refusal(session, trial.spec)) is None:
            continue
        origins = [trial.origin(name) for name in refusal.settings]
        where = next((o for o in origins if not o.startswith("hyperparameters.")), origins[0])
        errors.setdefault(where, FieldError(field=where, message=refusal.message))
        if len(errors) >= MAX_ERRORS:
            break
    return list(errors.values())


def launch_sweep(session: Session, data: Any, *, owner_id: int | None = None) -> LaunchedSweep:
    """Validate the sweep and every trial, its warm starts too, store them in one commit,
    send what the cap allows. Raises ``SpecError`` or ``QuotaExceeded`` before anything is
    stored."""
    spec = parse_sweep(data)
    trials = expand(spec)
    if errors := _reference_errors(session, trials):
        raise SpecError(errors)
    _check_quota(session, owner_id, min(len(trials), spec.max_parallel or len(trials)))
    sweep, experiments = crud.create_sweep(
        session=session, spec=spec, trials=trials, owner_id=owner_id
    )
    session.commit()
    ids = [experiment.id for experiment in experiments]
    return LaunchedSweep(sweep=sweep, experiment_ids=ids, sent=send_waiting(session, ids))


def get(session: Session, sweep_id: int) -> Sweep:
    sweep = crud.get_sweep(session=session, sweep_id=sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} does not exist")
    return sweep


def cancel_sweep(session: Session, sweep: Sweep) -> list[int]:
    """Cancel every queued and running trial (each with the experiment's own conditional
    cancel, so a trial finishing meanwhile keeps its outcome). Returns the ids cancelled."""
    cancelled = []
    for trial in crud.sweep_trials(session=session, sweep_id=sweep.id):
        if not trial.status.finished and crud.request_cancel(session=session, experiment=trial):
            cancelled.append(trial.id)
    session.commit()
    return cancelled


def retry_failed(session: Session, sweep: Sweep) -> list[int]:
    """Queue the sweep's failed and cancelled trials again; the cap applies as at launch.
    Raises ``Conflict`` when there is none to retry."""
    retryable = [t for t in crud.sweep_trials(session=session, sweep_id=sweep.id)
                 if t.status in RETRYABLE]  # fmt: skip
    if not retryable:
        raise Conflict(f"sweep {sweep.id} has no failed or cancelled trials to retry")
    retried = []
    for trial in retryable:
        try:
            retry(session, trial)
        except (BrokerUnavailable, Conflict):
            pass  # stays in the outbox (broker), or it changed meanwhile (conflict)
        retried.append(trial.id)
    return retried


@dataclass(frozen=True)
class TrialView:
    """One trial as the sweep page, the API and the CLI read it."""

    id: int
    name: str
    status: Status
    point: dict[str, Any]
    current_epoch: int
    total_epochs: int
    best_metric: float | None
    """The sweep's metric at the trial's best epoch so far."""
    test_accuracy: float | None
    stop_reason: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class SweepView:
    sweep: Sweep
    spec: SweepSpec
    trials: list[TrialView]
    counts: dict[Status, int]
    best: TrialView | None
    eta_seconds: float | None
    """Time left at the pace of the trials done so far; None until one has finished."""


def _best_per_trial(session: Session, sweep_id: int, metric: str) -> dict[int, float]:
    column = getattr(EpochMetric, metric)
    best = func.min(column) if metric == "val_loss" else func.max(column)
    rows = session.execute(
        select(EpochMetric.experiment_id, best)
        .join(Experiment, Experiment.id == EpochMetric.experiment_id)
        .where(Experiment.sweep_id == sweep_id)
        .group_by(EpochMetric.experiment_id)
    )
    return {experiment_id: value for experiment_id, value in rows if value is not None}


def _trial_view(trial: crud.TrialRow, names: Sequence[str], best: float | None) -> TrialView:
    hyperparameters = trial.spec.get("hyperparameters", {})
    return TrialView(
        id=trial.id, name=trial.name, status=trial.status,
        point={name: hyperparameters.get(name) for name in names},
        current_epoch=trial.current_epoch, total_epochs=trial.total_epochs, best_metric=best,
        test_accuracy=trial.test_accuracy, stop_reason=trial.stop_reason, error=trial.error,
        started_at=trial.started_at, finished_at=trial.finished_at,
    )  # fmt: skip


def _eta(trials: Sequence[TrialView], max_parallel: int | None) -> float | None:
    done = [t for t in trials if t.status.finished and t.started_at and t.finished_at]
    left = [t for t in trials if not t.status.finished]
    if not left:
        return 0.0
    if not done:
        return None
    durations = [(t.finished_at - t.started_at).total_seconds()  # type: ignore[operator]
                 for t in done]  # fmt: skip
    running = sum(t.status is Status.running for t in trials)
    parallel = max(1, min(len(left), max_parallel or len(left), max(running, 1)))
    return fmean(durations) * len(left) / parallel


def version(session: Session, sweep_id: int) -> crud.SweepVersion:
    """What changes whenever anything a ``view`` shows changes, bar a renamed trial: one
    aggregate over the sweep's trials (``crud.sweep_version``)."""
    return crud.sweep_version(session=session, sweep_id=sweep_id)


def view(session: Session, sweep_id: int) -> SweepView:
    """The sweep with every trial, counts, the best trial and an ETA, in three queries; the
    trials are read as plain rows (1,000 ORM objects took most of the time)."""
    sweep = get(session, sweep_id)
    spec = SweepSpec.model_validate(sweep.spec)
    metric = spec.pruning.metric
    best_values = _best_per_trial(session, sweep.id, metric)
    names = [*spec.varied, "seed"]
    trials = [
        _trial_view(trial, names, best_values.get(trial.id))
        for trial in crud.sweep_trial_rows(session=session, sweep_id=sweep.id)
    ]
    counts: dict[Status, int] = {}
    for trial in trials:
        counts[trial.status] = counts.get(trial.status, 0) + 1
    scored = [t for t in trials if t.best_metric is not None]
    if metric == "val_loss":
        best = min(scored, key=lambda t: t.best_metric or 0.0, default=None)
    else:
        best = max(scored, key=lambda t: t.best_metric or 0.0, default=None)
    return SweepView(
        sweep=sweep, spec=spec, trials=trials, counts=counts, best=best,
        eta_seconds=_eta(trials, sweep.max_parallel),
    )  # fmt: skip
