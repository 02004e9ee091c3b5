"""Cancelling an experiment: a queued one never starts, a running one stops at its next batch
(the worker's callback sees the status)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment


def cancel(session: Session, experiment: Experiment) -> Experiment:
    """One conditional UPDATE on the status and attempt read (``crud.request_cancel``): a run
    that finished meanwhile keeps its outcome, and a finished one is returned as it is, so
    a second click, or a click racing the run's end, is harmless."""
    crud.request_cancel(session=session, experiment=experiment)
    session.commit()
    return experiment
