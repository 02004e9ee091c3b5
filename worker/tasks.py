"""The training task: claim the experiment, run it, record how it ended.

TensorFlow is imported inside the task, in the pool's child process, never in the parent
that forks (a forked TensorFlow runtime deadlocks).
"""

from __future__ import annotations

import logging
import traceback

from app import crud
from app.config import get_settings
from app.db import session_scope
from app.models import Status
from app.queue import TRAIN_TASK
from app.schemas import parse_spec
from worker.celery_app import app

logger = logging.getLogger(__name__)


@app.task(name=TRAIN_TASK)
def train(experiment_id: int) -> str:
    from worker import runner  # imports TensorFlow: only here, in the child

    with session_scope() as session:
        claimed = crud.claim_experiment(
            session=session,
            experiment_id=experiment_id,
            worker_host=runner.worker_host(),
            device=runner.describe_device(),
        )
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        spec_data = experiment.spec if experiment else None
    if not claimed or spec_data is None:
        logger.info("experiment %s is not queued any more; skipping", experiment_id)
        return "skipped"
    try:
        outcome = runner.run_experiment(
            experiment_id=experiment_id, spec=parse_spec(spec_data), settings=get_settings()
        )
    except Exception as exc:
        logger.exception("experiment %s failed", experiment_id)
        _finish(experiment_id, Status.failed, _describe(exc))
        return Status.failed
    if outcome.cancelled:
        _finish(experiment_id, Status.cancelled, None)
        return Status.cancelled
    return Status.succeeded


def _finish(experiment_id: int, status: Status, error: str | None) -> None:
    with session_scope() as session:
        crud.finish_experiment(
            session=session, experiment_id=experiment_id, status=status, error=error
        )


def _describe(exc: Exception) -> str:
    """Errors written for users (missing data, weights) show alone; others with their trace."""
    from worker.data import DatasetNotFoundError

    if isinstance(exc, DatasetNotFoundError | ValueError):
        return str(exc)
    return "".join(traceback.format_exception_only(exc)).strip()
