"""Running a failed or cancelled experiment again; it resumes from its last epoch checkpoint."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status
from app.services import outbox
from app.services.errors import Conflict
from app.services.launch import BrokerUnavailable
from app.services.quotas import check_active_experiments

RETRYABLE = (Status.failed, Status.cancelled)


def retry(session: Session, experiment: Experiment) -> Experiment:
    """Back to queued with one conditional UPDATE on the status and attempt read
    (``crud.requeue``), committed, then sent like a launch. Raises ``Conflict`` when the
    experiment is not failed or cancelled (or stopped being so meanwhile), ``QuotaExceeded``
    before anything changes, ``BrokerUnavailable`` after (the outbox sends it later)."""
    status = experiment.status
    if status in RETRYABLE:
        check_active_experiments(session, experiment.owner_id)
    if status not in RETRYABLE or not crud.requeue(
        session=session, experiment_id=experiment.id, from_status=status,
        attempt=experiment.attempts,
    ):  # fmt: skip
        raise Conflict(
            f"experiment {experiment.id} is {experiment.status}; only failed or cancelled "
            "experiments can be retried"
        )
    session.commit()
    if not outbox.send(session, experiment.id):
        raise BrokerUnavailable(experiment)
    session.refresh(experiment)
    return experiment
