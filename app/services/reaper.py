"""Finds experiments whose worker went silent, and resumes or fails them; sends launches
the broker missed (app/services/outbox.py).

A worker that is SIGKILLed, loses its machine or runs out of memory stops writing heartbeats.
After ``heartbeat_timeout_seconds`` of silence the experiment goes back to the queue, where
another worker resumes it from its last epoch checkpoint; after ``max_attempts`` runs it is
marked failed instead, with a retry that resumes. The web process runs this loop; several
web processes may, since each change is a conditional UPDATE that only one of them wins.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from app.core import crud
from app.core.config import Settings
from app.core.db import session_scope
from app.core.models import Status, utcnow
from app.services import outbox

logger = logging.getLogger(__name__)


def reap_lost(settings: Settings) -> dict[int, str]:
    """One pass: {experiment id: "requeued" | "failed"} for what it changed."""
    silent_since = utcnow() - timedelta(seconds=settings.heartbeat_timeout_seconds)
    changed: dict[int, str] = {}
    with session_scope() as session:
        lost = [(e.id, e.attempts, e.worker_host) for e in crud.lost_experiments(
            session=session, silent_since=silent_since)]  # fmt: skip
    for experiment_id, attempts, host in lost:
        if attempts < settings.max_attempts:
            with session_scope() as session:
                won = crud.requeue(
                    session=session, experiment_id=experiment_id, from_status=Status.running,
                    attempt=attempts, silent_since=silent_since,
                )  # fmt: skip
                if won:
                    outbox.send(session, experiment_id)  # if the broker fails: the next pass
            if won:
                changed[experiment_id] = "requeued"
                logger.warning("experiment %s: worker %s lost; requeued", experiment_id, host)
            continue
        with session_scope() as session:
            message = (
                f"Worker lost: {host} stopped sending heartbeats for over "
                f"{settings.heartbeat_timeout_seconds:.0f} s (attempt {attempts} of "
                f"{settings.max_attempts}). Epochs recorded so far are kept; Retry resumes "
                "from the last epoch checkpoint."
            )
            won = crud.fail_lost(
                session=session, experiment_id=experiment_id, attempt=attempts,
                silent_since=silent_since, message=message,
            )  # fmt: skip
        if won:
            changed[experiment_id] = "failed"
            logger.warning("experiment %s: worker %s lost; marked failed", experiment_id, host)
    return changed


class Reaper:
    """Runs ``outbox.send_pending`` every ``outbox_interval_seconds`` and ``reap_lost`` every
    half heartbeat timeout, in a daemon thread until stopped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cifarlab-reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        reap_every = max(self.settings.heartbeat_timeout_seconds / 2, 0.5)
        next_reap = time.monotonic() + reap_every
        while not self._stop.wait(min(self.settings.outbox_interval_seconds, reap_every)):
            try:
                outbox.send_pending()
                if time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + reap_every
                    reap_lost(self.settings)
            except Exception:  # a broker or database hiccup must not end the loop
                logger.exception("the web's background pass failed; trying again")
