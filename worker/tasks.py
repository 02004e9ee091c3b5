"""The training task: claim the experiment, run it, record how it ended.

TensorFlow is imported inside the task, in the pool's child process, never in the parent
that forks (a forked TensorFlow runtime deadlocks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app import crud
from app.config import get_settings
from app.db import session_scope
from app.models import Status
from app.queue import TRAIN_TASK
from app.schemas import parse_spec
from worker.celery_app import app

logger = logging.getLogger(__name__)


@contextmanager
def heartbeat(experiment_id: int, interval_seconds: float) -> Iterator[None]:
    """Beats from a thread while the block runs: data loading, graph tracing and evaluation
    write no epochs, yet the experiment must not look lost."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_seconds):
            try:
                with session_scope() as session:
                    crud.beat(session=session, experiment_id=experiment_id)
            except Exception:
                logger.exception("heartbeat of experiment %s failed", experiment_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{experiment_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@app.task(name=TRAIN_TASK, bind=True)
def train(self: Any, experiment_id: int) -> str:
    from worker import runner  # imports TensorFlow: only here, in the child

    settings = get_settings()
    with session_scope() as session:
        claimed = crud.claim_experiment(
            session=session,
            experiment_id=experiment_id,
            worker_name=self.request.hostname or "in-process",
            worker_host=runner.worker_host(),
            device=runner.describe_device(),
        )
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        spec_data = experiment.spec if experiment else None
    if not claimed or spec_data is None:
        logger.info("experiment %s is not queued any more; skipping", experiment_id)
        return "skipped"
    try:
        with heartbeat(experiment_id, settings.heartbeat_interval_seconds):
            outcome = runner.run_experiment(
                experiment_id=experiment_id, spec=parse_spec(spec_data), settings=settings
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
    """Errors written for users (missing data, weights, bad warm start) show alone."""
    from worker.data import DatasetNotFoundError
    from worker.weights import WeightsNotFoundError

    if isinstance(exc, DatasetNotFoundError | WeightsNotFoundError | ValueError):
        return str(exc)
    if isinstance(exc, MemoryError) or "OOM" in str(exc) or "out of memory" in str(exc).lower():
        return (
            f"Out of memory: {type(exc).__name__}: {exc}. Try a smaller batch_size or "
            "image_size, or a smaller model."
        )
    return f"{type(exc).__name__}: {exc}"
