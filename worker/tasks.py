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
def heartbeat(lease: crud.Lease, interval_seconds: float) -> Iterator[None]:
    """Beats from a thread while the block runs: data loading, graph tracing and evaluation
    write no epochs, yet the experiment must not look lost. Stops beating once the attempt
    has lost the run (training notices on its own next write)."""
    stop = threading.Event()
    experiment_id = lease.experiment_id

    def beat() -> None:
        while not stop.wait(interval_seconds):
            try:
                with session_scope() as session:
                    crud.beat(session=session, lease=lease)
            except crud.LeaseLost as lost:
                logger.warning("%s; heartbeat stops", lost)
                return
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
        lease = crud.claim_experiment(
            session=session,
            experiment_id=experiment_id,
            worker_name=self.request.hostname or "in-process",
            worker_host=runner.worker_host(),
            device=runner.describe_device(),
        )
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        spec_data = experiment.spec if experiment else None
    if lease is None or spec_data is None:
        logger.info("experiment %s is not queued any more; skipping", experiment_id)
        return "skipped"
    try:
        with heartbeat(lease, settings.heartbeat_interval_seconds):
            outcome = runner.run_experiment(
                lease=lease, spec=parse_spec(spec_data), settings=settings
            )
    except crud.LeaseLost as lost:
        logger.warning("%s; another attempt runs it, so this one ends without a word", lost)
        return SUPERSEDED
    except Exception as exc:
        logger.exception("experiment %s failed", experiment_id)
        return _end(lease, Status.failed, _describe(exc))
    if outcome.cancelled:
        return _end(lease, Status.cancelled, None)
    return Status.succeeded


SUPERSEDED = "superseded"
"""The task's result when another attempt took the run over while this one stalled."""


def _end(lease: crud.Lease, status: Status, error: str | None) -> str:
    """The attempt's outcome, if it still held the run when it ended."""
    with session_scope() as session:
        ended = crud.end_attempt(session=session, lease=lease, status=status, error=error)
    return status if ended else SUPERSEDED


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
