"""Deleting a finished experiment with its metrics, evaluation and files."""

from __future__ import annotations

import shutil

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Experiment, Status
from app.services.errors import Conflict

NAMED_DEPENDENTS = 5
"""Dependents a refusal names; a sweep may hold hundreds, and the rest are counted."""


def _dependents(session: Session, experiment_id: int) -> list[tuple[int, Status]]:
    """Queued and running experiments that warm-start from this one: they load its model
    file when they start (or resume), so it must outlive them. Finished ones no longer
    need it."""
    warm_start = Experiment.spec[("hyperparameters", "warm_start_experiment_id")].as_integer()
    rows = session.execute(
        select(Experiment.id, Experiment.status)
        .where(Experiment.status.in_(crud.ACTIVE), warm_start == experiment_id)
        .order_by(Experiment.id)
    )
    return [(row.id, row.status) for row in rows]


def _dependents_message(dependents: list[tuple[int, Status]]) -> str:
    named = ", ".join(f"{i} ({status})" for i, status in dependents[:NAMED_DEPENDENTS])
    more = len(dependents) - NAMED_DEPENDENTS
    if len(dependents) == 1:
        return f"experiment {named} warm-starts from it; cancel or delete it first"
    named += f" and {more} more" if more > 0 else ""
    return f"experiments {named} warm-start from it; cancel or delete them first"


def delete(session: Session, experiment: Experiment) -> None:
    """One conditional DELETE (``crud.delete_finished``), committed before the files go: an
    experiment still queued or running (or requeued meanwhile) keeps its row and files, and
    so does one whose model a queued or running experiment warm-starts from (read after the
    DELETE, in its transaction: a launch committed by then is seen; the worker still says
    so if a launch checked the source just before the DELETE). Raises ``Conflict``."""
    experiment_id, status = experiment.id, experiment.status
    if not crud.delete_finished(session=session, experiment_id=experiment_id):
        session.rollback()  # SQLite holds its write lock from the DELETE until now
        raise Conflict(f"experiment {experiment_id} is {status}; cancel it first")
    if dependents := _dependents(session, experiment_id):
        session.rollback()
        message = _dependents_message(dependents)
        raise Conflict(f"experiment {experiment_id} is still needed: {message}")
    session.commit()
    session.expunge(experiment)  # gone: a later read must not try to refresh it
    shutil.rmtree(get_settings().experiment_dir(experiment_id), ignore_errors=True)
