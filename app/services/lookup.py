"""Finding the experiment a request names, or the domain's 404."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.services.errors import NotFound


def find_experiment(session: Session, experiment_id: int, *, detail: bool = False) -> Experiment:
    """``detail`` loads its layer table and evaluation in the same query (its page and
    GET /api/experiments/{id} show both). Raises ``NotFound``."""
    get = crud.get_experiment_detail if detail else crud.get_experiment
    experiment = get(session=session, experiment_id=experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    return experiment
