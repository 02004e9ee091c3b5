"""The attempt fences every worker write: a stalled worker that wakes up after its run was
requeued and claimed again changes nothing, and status changes hold only from the state seen."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.core import crud, db
from app.core.models import Status
from tests.support.factories import claim, make_experiment

pytestmark = pytest.mark.both_databases

REPORT = {
    "a": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1.0},
    "accuracy": 1.0,
    "macro avg": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1.0},
    "weighted avg": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 1.0},
}


def test_a_stale_attempt_writes_nothing(session: Session, backend: str) -> None:
    experiment = make_experiment(session, epochs=5)
    stale = claim(session, experiment.id)
    crud.record_epoch(session=session, lease=stale, epoch=1, values={"loss": 2.0})
    assert crud.requeue(
        session=session, experiment_id=experiment.id, from_status=Status.running, attempt=1
    )
    current = claim(session, experiment.id)
    assert current.attempt == 2
    crud.record_epoch(session=session, lease=current, epoch=1, values={"loss": 1.0})
    crud.record_progress(session=session, lease=current, epoch=2, epoch_progress=0.25)
    session.commit()

    writes = {
        "record_epoch": lambda: crud.record_epoch(
            session=session, lease=stale, epoch=2, values={"loss": 9.0}
        ),
        "record_progress": lambda: crud.record_progress(
            session=session, lease=stale, epoch=3, epoch_progress=0.5
        ),
        "beat": lambda: crud.beat(session=session, lease=stale),
        "set_model_info": lambda: crud.set_model_info(
            session=session, lease=stale, parameters=1, trainable_parameters=1, layers=[]
        ),
        "save_evaluation": lambda: crud.save_evaluation(
            session=session, lease=stale, classes=["a"], confusion_matrix=[[1]], report=REPORT
        ),
    }
    for write in writes.values():
        with pytest.raises(crud.LeaseLost):
            write()
        session.commit()  # whatever the failed write left in the transaction would land now
    assert not crud.end_attempt(session=session, lease=stale, status=Status.failed, error="x")
    session.commit()

    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert (stored.status, stored.attempts, stored.error) == (Status.running, 2, None)
    assert (stored.current_epoch, stored.epoch_progress) == (2, 0.25)
    assert stored.parameters is None and stored.evaluation is None
    rows = crud.list_epochs(session=session, experiment_id=experiment.id)
    assert [(row.epoch, row.loss) for row in rows] == [(1, 1.0)]


def test_a_cancel_during_the_attempt_is_seen_and_stands(session: Session, backend: str) -> None:
    experiment = make_experiment(session)
    lease = claim(session, experiment.id)
    session.commit()
    assert crud.request_cancel(session=session, experiment=experiment)
    session.commit()
    assert crud.record_progress(session=session, lease=lease, epoch=1, epoch_progress=0.5)
    assert crud.end_attempt(session=session, lease=lease, status=Status.failed, error="late")
    session.commit()
    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert (stored.status, stored.error) == (Status.cancelled, None)
    assert stored.finished_at is not None
    with pytest.raises(crud.LeaseLost):  # it has ended: nothing more from this attempt
        crud.beat(session=session, lease=lease)


def test_status_changes_hold_only_from_the_state_seen(session: Session, backend: str) -> None:
    experiment = make_experiment(session)
    lease = claim(session, experiment.id)
    session.commit()
    with db.get_sessionmaker()() as other:  # a page read the run while it was running...
        seen = crud.get_experiment(session=other, experiment_id=experiment.id)
        assert seen is not None and seen.status == Status.running
        crud.save_evaluation(  # ...and it succeeded before the cancel arrived
            session=session, lease=lease, classes=["a"], confusion_matrix=[[1]], report=REPORT
        )
        session.commit()
        assert not crud.request_cancel(session=other, experiment=seen)
        other.commit()
        assert seen.status == Status.succeeded
    assert not crud.requeue(
        session=session, experiment_id=experiment.id, from_status=Status.succeeded, attempt=2
    )
    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert (stored.status, stored.error) == (Status.succeeded, None)
