"""The task's outcomes: claimed once, failures recorded with a message a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Status
from tests.support.factories import make_experiment
from worker.tasks import train


def test_missing_dataset_ends_failed_with_how_to_provide_it(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tmp_path / "nowhere"))
    get_settings.cache_clear()
    experiment = make_experiment(session)
    assert train(experiment.id) == Status.failed
    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert stored.status == Status.failed
    assert "CIFARLAB_CIFAR10_PATH" in stored.error
    assert str(tmp_path / "nowhere") in stored.error
    assert stored.finished_at is not None


def test_a_redelivered_task_does_not_run_twice(session: Session) -> None:
    experiment = make_experiment(session)
    crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="other", device="CPU"
    )
    session.commit()
    assert train(experiment.id) == "skipped"
    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert (stored.status, stored.worker_host) == (Status.running, "other")
