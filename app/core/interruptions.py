"""Runs whose process is known to have died: said in words, then requeued or failed at once.

The reaper (app/services/reaper.py) finds runs whose worker went silent, which takes the heartbeat
timeout. Here the death is known as it happens: `cifarlab up` saw its worker exit, or a
worker's main process saw its pool child die. The run goes back to the queue, to resume from
its last epoch checkpoint, or after ``max_attempts`` runs ends failed, with the reason.
"""

from __future__ import annotations

import logging
import signal
from typing import Literal

from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import Settings
from app.core.db import session_scope
from app.core.memory import MemoryFigures

logger = logging.getLogger(__name__)
Outcome = Literal["requeued", "failed"]


def describe_exit(returncode: int) -> str:
    """Popen's return code in words: ``killed by SIGKILL`` or ``exited with code 1``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def describe_death(who: str, returncode: int, memory: MemoryFigures | None) -> str:
    """What the experiment page says. SIGKILL is what Linux's OOM killer sends, so it says so,
    with the memory figures of the run's last heartbeat where there are any."""
    if returncode == -signal.SIGKILL:
        figures = f": {memory.describe()}" if memory else ""
        return f"{who} was killed (SIGKILL), most likely out of memory{figures}"
    return f"{who} {describe_exit(returncode)}"


def settle(
    *, session: Session, settings: Settings, experiment_id: int, attempt: int, reason: str
) -> Outcome | None:
    """Requeue the run, or fail it after its last attempt; None if it had moved on (finished,
    cancelled, or already requeued by someone else). The caller commits and enqueues."""
    if attempt < settings.max_attempts:
        won = crud.requeue_interrupted(
            session=session, experiment_id=experiment_id, attempt=attempt,
            reason=f"Attempt {attempt}: {reason}.",
        )  # fmt: skip
        return "requeued" if won else None
    message = (
        f"{reason[:1].upper()}{reason[1:]} (attempt {attempt} of {settings.max_attempts}). "
        "Epochs recorded so far are kept; Retry resumes from the last epoch checkpoint."
    )
    won = crud.fail_interrupted(
        session=session, experiment_id=experiment_id, attempt=attempt, message=message
    )
    return "failed" if won else None


def requeue_dead_worker(
    settings: Settings, *, worker_name: str, returncode: int
) -> dict[int, Outcome]:
    """Settle every run the dead worker held. Their messages are the dead worker's: the caller
    puts them back in the queue (``app.core.queue.restore_unacknowledged``), after this, so that
    each finds its run queued again."""
    with session_scope() as session:
        held = [
            (e.id, e.attempts, MemoryFigures.from_json(e.memory))
            for e in crud.running_on_worker(session=session, worker_name=worker_name)
        ]
    outcomes: dict[int, Outcome] = {}
    for experiment_id, attempt, memory in held:
        reason = describe_death("the worker", returncode, memory)
        with session_scope() as session:
            outcome = settle(
                session=session, settings=settings, experiment_id=experiment_id,
                attempt=attempt, reason=reason,
            )  # fmt: skip
        if outcome:
            outcomes[experiment_id] = outcome
            logger.warning("experiment %s: %s; %s", experiment_id, reason, outcome)
    return outcomes
