"""Deleting a finished experiment with its metrics, evaluation and files."""

from __future__ import annotations

import shutil

from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Experiment
from app.services.errors import Conflict


def delete(session: Session, experiment: Experiment) -> None:
    """One conditional DELETE (``crud.delete_finished``), committed before the files go: an
    experiment still queued or running (or requeued meanwhile) keeps its row and files.
    Raises ``Conflict``."""
    experiment_id, status = experiment.id, experiment.status
    if not crud.delete_finished(session=session, experiment_id=experiment_id):
        session.rollback()  # SQLite holds its write lock from the DELETE until now
        raise Conflict(f"experiment {experiment_id} is {status}; cancel it first")
    session.commit()
    session.expunge(experiment)  # gone: a later read must not try to refresh it
    shutil.rmtree(get_settings().experiment_dir(experiment_id), ignore_errors=True)
