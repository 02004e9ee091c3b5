"""A whole task on tiny data: the run moves through its phases, its heartbeat records the
machine's readings, and its own log file holds the run's lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Status
from app.core.run_log import run_log_path, tail
from app.core.telemetry import Telemetry
from tests.support.factories import make_experiment
from worker.tasks import train


def test_a_run_moves_through_its_phases_and_logs_to_its_own_file(
    session: Session, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    monkeypatch.setenv("CIFARLAB_HEARTBEAT_INTERVAL_SECONDS", "0.2")
    get_settings.cache_clear()
    phases: list[str] = []
    record = crud.set_run_phase

    def recorded(**arguments):  # type: ignore[no-untyped-def]
        phases.append(arguments["phase"])
        return record(**arguments)

    monkeypatch.setattr(crud, "set_run_phase", recorded)
    experiment = make_experiment(
        session, epochs=2, train_size=100, test_size=50, conv_blocks=1, filters=8,
        dense_units=16, batch_size=32,
    )  # fmt: skip
    assert train(experiment.id) == Status.succeeded
    assert phases == ["loading_data", "train", "evaluating"]
    session.expire_all()
    stored = crud.get_experiment(session=session, experiment_id=experiment.id)
    assert stored is not None and stored.run_phase == "evaluating"
    readings = Telemetry.from_json(stored.telemetry)  # a beat landed in a run of seconds
    assert readings is not None and readings.memory_total_bytes > 0
    lines = tail(run_log_path(get_settings(), experiment.id))
    prefix = f"experiment {experiment.id}: "
    said = [line.split(prefix, 1)[1] for line in lines if prefix in line]
    steps = [line.split(" (")[0] for line in said]
    in_order = ["loading data", "training", "epoch 1", "epoch 2", "evaluating on the test set"]
    assert [step for step in steps if step in in_order] == in_order
    assert said[-1] == "attempt 1 ended succeeded"
