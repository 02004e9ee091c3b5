"""The training task: claim the experiment, run it, record how it ended.

TensorFlow is imported in the pool's child process, never in the parent that forks (a forked
TensorFlow runtime deadlocks). Each child trains one run (``worker_max_tasks_per_child``), and
starts importing the training code as soon as it is forked, so a run launched on an idle worker
does not wait the 4 s that importing TensorFlow and Keras takes. What the child writes to
temporary files goes to a folder of its own, removed as it ends (``worker/temporary_folder.py``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery.signals import worker_process_init, worker_process_shutdown
from celery.worker.request import Request

from app.core import crud
from app.core.config import Settings, get_settings
from app.core.db import session_scope, unpooled_session_scope
from app.core.interruptions import describe_death, settle
from app.core.memory import MemoryFigures, read_memory
from app.core.models import Status
from app.core.queue import TRAIN_TASK
from app.core.schemas import parse_spec
from worker.celery_app import app
from worker.hardware import without_early_tensorflow_logs
from worker.run_log import run_log
from worker.telemetry import TelemetryReader
from worker.temporary_folder import remove_own_temporary_folder, use_own_temporary_folder

logger = logging.getLogger(__name__)


@contextmanager
def heartbeat(lease: crud.Lease, interval_seconds: float) -> Iterator[None]:
    """Beats from a thread while the block runs: data loading, graph tracing and evaluation
    write no epochs, yet the experiment must not look lost. Each beat also records memory,
    which the message quotes if the process is killed (the OOM killer sends SIGKILL). Stops
    beating once the attempt has lost the run (training notices on its own next write). Each
    beat also records the CPU, memory and GPU readings the experiment page shows."""
    stop = threading.Event()
    experiment_id = lease.experiment_id

    def beat() -> None:
        telemetry = TelemetryReader()
        while not stop.wait(interval_seconds):
            memory = read_memory()
            readings = telemetry.read()
            try:
                with session_scope() as session:
                    crud.beat(session=session, lease=lease)
                    if readings is not None:  # beat raised if the run is not this attempt's
                        crud.record_telemetry(
                            session=session, experiment_id=experiment_id,
                            telemetry=readings.as_json(),
                        )  # fmt: skip
                    if memory is not None:
                        crud.record_memory(
                            session=session, experiment_id=experiment_id, memory=memory.as_json()
                        )
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


class TrainRequest(Request):  # type: ignore[misc]
    """A pool child that dies mid-run (SIGKILL from the OOM killer) raises WorkerLostError in
    the main process, and Celery requeues the message (task_reject_on_worker_lost). The row
    would still say running, so the redelivered message would skip it and the run wait for
    the reaper's heartbeat timeout. Settle the row first, here: requeued (Celery's requeued
    message then resumes it) or, after the last attempt, failed, with the reason."""

    def on_failure(
        self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, WorkerLostError):
            try:
                settle_lost_child(int(self.args[0]), self.hostname, str(exc))
            except Exception:  # the reaper still catches it after the heartbeat timeout
                logger.exception("could not settle the run of a lost pool process")
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


def settle_lost_child(experiment_id: int, worker_name: str, description: str) -> None:
    """Runs in Celery's main process, which forks: an unpooled session, closed at the end."""
    found = re.search(r"signal (\d+)|exitcode (\d+)", description)
    returncode = (-int(found[1]) if found[1] else int(found[2])) if found else 1
    with unpooled_session_scope() as session:
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        if experiment is None or experiment.status != Status.running:
            return  # it died before claiming, or the run had ended
        if experiment.worker_name != worker_name:
            return  # another worker runs it now
        memory = MemoryFigures.from_json(experiment.memory)
        reason = describe_death("the worker's training process", returncode, memory)
        outcome = settle(
            session=session, settings=get_settings(), experiment_id=experiment_id,
            attempt=experiment.attempts, reason=reason,
        )  # fmt: skip
    logger.warning("experiment %s: %s; %s", experiment_id, reason, outcome or "already settled")


def _import_training_code() -> None:
    with without_early_tensorflow_logs():
        import worker.runner  # noqa: F401


# In a thread, as the child must report itself up within ``worker_proc_alive_timeout`` (4 s).
_importing = threading.Thread(
    target=_import_training_code, name="import-training-code", daemon=True
)


@worker_process_init.connect
def start_pool_process(**_: Any) -> None:
    use_own_temporary_folder()  # first: all the process writes there goes with it
    _importing.start()


@worker_process_shutdown.connect
def end_pool_process(**_: Any) -> None:
    remove_own_temporary_folder()


@app.task(name=TRAIN_TASK, bind=True, Request=TrainRequest)
def train(self: Any, experiment_id: int) -> str:
    if _importing.is_alive():
        _importing.join()  # not only the import: its stderr must be put back first
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
    with run_log(settings, experiment_id):
        ended = _run(lease, spec_data, settings)
        logger.info("experiment %s: attempt %s ended %s", experiment_id, lease.attempt, ended)
    return ended


def _run(lease: crud.Lease, spec_data: dict[str, Any], settings: Settings) -> str:
    """The claimed attempt, from training to how it ended."""
    from worker import runner

    experiment_id = lease.experiment_id
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
    if outcome.pruned:
        with session_scope() as session:
            ended = crud.end_pruned(session=session, lease=lease, reason=outcome.pruned)
        return Status.pruned if ended else SUPERSEDED
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
