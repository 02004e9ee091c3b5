"""The lifecycle services on their own (no HTTP): each status change is conditional on the
state it read, so a change made meanwhile by another request wins over a stale one."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core import crud, db
from app.core.models import Status
from app.core.schemas import SpecError
from app.services import cancel, delete, importing, retry
from app.services.errors import Conflict
from app.services.lookup import find_experiment
from tests.support.factories import claim, make_experiment


def failed_run(session: Session) -> int:
    experiment_id = make_experiment(session).id
    lease = claim(session, experiment_id)
    crud.record_epoch(session=session, lease=lease, epoch=1, values={"loss": 1.0})
    crud.end_attempt(session=session, lease=lease, status=Status.failed)
    session.commit()
    return experiment_id


def requeue_elsewhere(experiment_id: int) -> None:
    """Another request (another web process) retries the run and commits."""
    with db.get_sessionmaker()() as other:
        seen = find_experiment(other, experiment_id)
        assert crud.requeue(
            session=other, experiment_id=experiment_id, from_status=Status(seen.status),
            attempt=seen.attempts,
        )  # fmt: skip
        other.commit()


def test_delete_of_a_run_retried_meanwhile_is_refused_and_keeps_it(session: Session) -> None:
    experiment_id = failed_run(session)
    stale = find_experiment(session, experiment_id)  # read as failed: deletable
    requeue_elsewhere(experiment_id)
    with pytest.raises(Conflict, match="cancel it first"):
        delete.delete(session, stale)
    session.expire_all()
    assert find_experiment(session, experiment_id).status == Status.queued
    assert len(crud.list_epochs(session=session, experiment_id=experiment_id)) == 1


def test_delete_takes_the_epochs_with_it(session: Session) -> None:
    experiment_id = failed_run(session)
    delete.delete(session, find_experiment(session, experiment_id))
    assert crud.get_experiment(session=session, experiment_id=experiment_id) is None
    assert crud.list_epochs(session=session, experiment_id=experiment_id) == []


def test_retry_of_a_run_retried_meanwhile_is_a_conflict(session: Session) -> None:
    experiment_id = failed_run(session)
    stale = find_experiment(session, experiment_id)
    requeue_elsewhere(experiment_id)
    with pytest.raises(Conflict, match="only failed or cancelled"):
        retry.retry(session, stale)


def test_cancel_leaves_a_finished_run_as_it_ended(session: Session) -> None:
    experiment_id = failed_run(session)
    assert cancel.cancel(session, find_experiment(session, experiment_id)).status == Status.failed


def test_an_import_refused_stores_nothing(session: Session) -> None:
    with pytest.raises(SpecError) as refused:
        importing.import_report(session, {"name": "", "report_text": "hello"}, owner_id=None)
    assert {error.field for error in refused.value.errors} == {"name", "report_text"}
    assert crud.list_experiments(session=session)[1] == 0
