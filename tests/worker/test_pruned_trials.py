"""A sweep's trial pruned by the real task on tiny data: it stops after the epoch its rule
judged, keeps that epoch, is not evaluated, and ends ``pruned`` with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Status
from app.services.sweeps import launch_sweep
from tests.support.factories import claim
from worker.tasks import train

TINY = {"conv_blocks": 1, "filters": 8, "dense_units": 16, "batch_size": 32}


@pytest.fixture
def settings_with_data(data_dir: Path, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    get_settings.cache_clear()
    return get_settings()


@pytest.mark.usefixtures("broker")
def test_a_trial_worse_than_the_median_is_pruned_after_its_first_epoch(
    settings_with_data, session: Session
) -> None:
    launched = launch_sweep(
        session,
        {
            "name": "pruned sweep",
            "model": "custom_cnn",
            # A step size so small that one epoch leaves the trial near chance.
            "hyperparameters": {
                "epochs": 3, "train_size": 200, "test_size": 100, "learning_rate": 1e-6, **TINY,
            },
            "seeds": [0, 1],
            "pruning": {"rule": "median", "warmup_epochs": 0, "min_trials": 1},
        },
        owner_id=None,
    )  # fmt: skip
    sibling, trial = launched.experiment_ids
    lease = claim(session, sibling)
    for epoch in (1, 2, 3):
        values = {"loss": 0.1, "accuracy": 0.98, "val_loss": 0.1, "val_accuracy": 0.97}
        crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
    session.commit()

    assert train(trial) == Status.pruned

    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=trial)
    assert stored.status == Status.pruned
    assert stored.finished_at is not None and stored.error is None
    assert stored.stop_reason.startswith("pruned at epoch 1 because val_accuracy ")
    assert stored.stop_reason.endswith(" is below the median 0.97 of 1 other trial at that epoch")
    rows = crud.list_epochs(session=session, experiment_id=trial)
    assert [row.epoch for row in rows] == [1]
    assert rows[0].val_accuracy is not None and rows[0].val_accuracy < 0.97
    assert stored.evaluation is None
    assert not settings_with_data.model_path(trial).exists()
    assert not list(settings_with_data.experiment_dir(trial).glob("checkpoint*"))
