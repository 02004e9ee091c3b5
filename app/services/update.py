"""Renaming, retagging and annotating an experiment; results never change after the fact."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment


def update(session: Session, experiment: Experiment, changes: dict[str, Any]) -> Experiment:
    """``changes``: only the fields the caller set (name, tags, notes). No status changes
    here, so no condition on it: an annotation is welcome in any state."""
    crud.update_experiment(session=session, experiment=experiment, changes=changes)
    session.commit()
    return experiment
