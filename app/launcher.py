"""Launching an experiment, the same way from the form, the API and the CLI's API call."""

from __future__ import annotations

import logging
from typing import Any

from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.orm import Session

from app import crud
from app.config import get_settings
from app.models import Experiment, Status
from app.queue import enqueue_training
from app.schemas import ExperimentSpec, FieldError, SpecError, parse_spec

logger = logging.getLogger(__name__)


def check_references(session: Session, spec: ExperimentSpec) -> None:
    """What the spec alone cannot know: a warm start must name a model that exists."""
    source_id = spec.hyperparameters.warm_start_experiment_id
    if source_id is None:
        return
    field = "hyperparameters.warm_start_experiment_id"
    source = crud.get_experiment(session=session, experiment_id=source_id)
    if source is None or source.status != Status.succeeded:
        message = f"experiment {source_id} has no trained model to start from; pick one that "
        raise SpecError([FieldError(field=field, message=message + "succeeded")])
    if source.model != spec.model:
        message = f"experiment {source_id} trained {source.model}, not {spec.model}"
        raise SpecError([FieldError(field=field, message=message)])


def launch(session: Session, spec_data: Any, *, owner_id: int | None = None) -> Experiment:
    """Validate, store as queued, commit, then enqueue: a queued id always has its row.

    Raises ``SpecError`` before anything is stored.
    """
    spec = parse_spec(spec_data)
    check_references(session, spec)
    experiment = crud.create_experiment(session=session, spec=spec, owner_id=owner_id)
    session.commit()
    enqueue_or_fail(session, experiment)
    return experiment


def enqueue_or_fail(session: Session, experiment: Experiment) -> None:
    """Send a committed, queued experiment to the workers. If the broker cannot be reached
    it is marked failed with what to do, rather than left queued forever."""
    try:
        enqueue_training(experiment.id)
    except Exception as exc:
        logger.exception("could not enqueue experiment %s", experiment.id)
        broker = maybe_sanitize_url(get_settings().redis_url)
        crud.finish_experiment(
            session=session,
            experiment_id=experiment.id,
            from_status=Status.queued,
            status=Status.failed,
            error=f"Could not reach the broker at {broker}: {exc}.\n"
            "Start Redis (`cifarlab up` starts one), then retry.",
        )
        session.commit()
    session.refresh(experiment)
