"""On a CPU the same spec and seed train to the same epoch metrics, to the last digit: each
run in its own process, as every task runs in a fresh pool child, with augmentation on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Status
from tests.support.factories import make_experiment

REPOSITORY = Path(__file__).resolve().parents[2]
RUN_TASK = "import sys; from worker.tasks import train; print(train(int(sys.argv[1])))"
METRICS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


def run_in_own_process(experiment_id: int) -> str:
    """The train task in a fresh interpreter on this test's database and data (the
    environment the fixtures set); returns what the task returned."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_TASK, str(experiment_id)],
        cwd=REPOSITORY, env=os.environ.copy(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_the_same_spec_and_seed_give_the_same_epoch_metrics_exactly(
    data_dir: Path, tiny_cifar10: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    hyperparameters = dict(
        epochs=2, train_size=200, test_size=100, seed=7, augment_flip=True,
        augment_translate=0.1, cutout=8, conv_blocks=1, filters=8, dense_units=16,
        batch_size=32,
    )  # fmt: skip
    runs = [make_experiment(session, **hyperparameters).id for _ in range(2)]
    assert [run_in_own_process(run) for run in runs] == [Status.succeeded] * 2

    session.expire_all()
    metrics = [
        [tuple(getattr(row, name) for name in METRICS) for row in crud.list_epochs(
            session=session, experiment_id=run)]
        for run in runs
    ]  # fmt: skip
    assert [row[0] for row in metrics[0]] == [1, 2]
    assert all(value is not None for row in metrics[0] for value in row)
    assert metrics[0] == metrics[1]
    evaluations = [crud.get_experiment(session=session, experiment_id=run).evaluation
                   for run in runs]  # fmt: skip
    assert evaluations[0].confidences.tolist() == evaluations[1].confidences.tolist()
