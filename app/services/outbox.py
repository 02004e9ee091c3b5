"""The launch outbox: a stored experiment is sent to the broker now, or later, never lost.

A launch stores the experiment as queued with no ``enqueued_at`` and commits; then it takes a
short lease on sending it (a conditional UPDATE), sends, and records ``enqueued_at``. If the
broker cannot be reached the lease is given back and the experiment stays queued; the web's
loop (app/services/reaper.py) sends it once the broker answers again. The lease keeps two web
processes from both sending it; a process that dies mid-send leaves a lease that runs out,
and the worst case then is a second message, which the worker's conditional claim ignores.
So is a send that timed out on a stalled Redis: its command may still run when Redis resumes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.orm import Session

from app.core import crud
from app.core.db import session_scope
from app.core.models import utcnow
from app.core.queue import enqueue_training

logger = logging.getLogger(__name__)

SEND_LEASE_SECONDS = 60.0
"""Longer than any send takes (broker calls give up after ``broker_timeout_seconds``)."""
SWEEP_BATCH = 100


def _lease_start() -> timedelta:
    return timedelta(seconds=SEND_LEASE_SECONDS)


def send(session: Session, experiment_id: int) -> bool:
    """Send one committed, queued experiment unless another process is sending it. True once
    the broker has it (or another process holds the send); False if the broker failed."""
    if not crud.claim_send(
        session=session, experiment_id=experiment_id, claimed_before=utcnow() - _lease_start()
    ):
        session.commit()
        return True
    session.commit()
    try:
        enqueue_training(experiment_id)
    except Exception as exc:  # the broker's client raises several unrelated types
        logger.warning("experiment %s stays in the outbox: broker: %s", experiment_id, exc)
        crud.settle_send(session=session, experiment_id=experiment_id, sent=False)
        session.commit()
        return False
    crud.settle_send(session=session, experiment_id=experiment_id, sent=True)
    session.commit()
    return True


def send_pending() -> list[int]:
    """One pass of the web's loop: send what launches could not. Stops at the first broker
    failure (the rest would fail alike); returns the ids no longer waiting on this pass."""
    with session_scope() as session:
        pending = crud.unsent_experiments(
            session=session, claimed_before=utcnow() - _lease_start(), limit=SWEEP_BATCH
        )
    sent: list[int] = []
    for experiment_id in pending:
        with session_scope() as session:
            if not send(session, experiment_id):
                break
        sent.append(experiment_id)
    return sent
