"""Launch through the API and the CLI against `cifarlab up`: real Redis, worker and web."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.factories import spec_data
from tests.support.polling import wait_until
from tests.support.servers import Stack, epochs, wait_until_finished

pytestmark = pytest.mark.e2e


def test_api_launch_trains_and_reports(stack: Stack) -> None:
    launched_at = time.monotonic()
    spec = spec_data(epochs=2, train_size=300, test_size=100, batch_size=32, filters=16)
    response = httpx.post(f"{stack.base_url}/api/experiments", json=spec)
    assert response.status_code == 201, response.text
    experiment_id = response.json()["id"]
    wait_until(lambda: epochs(stack, experiment_id), 240, interval=0.25, what="a first epoch")
    first_epoch_seconds = time.monotonic() - launched_at
    experiment = wait_until_finished(stack, experiment_id)
    assert experiment["status"] == "succeeded", experiment["error"]
    assert experiment["device"].startswith("CPU")
    assert experiment["worker_host"] and experiment["training_seconds"] > 0
    rows = httpx.get(f"{stack.base_url}/api/experiments/{experiment_id}/metrics").json()["epochs"]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert all(row[key] is not None for key in ("loss", "accuracy", "val_loss", "val_accuracy"))
    evaluation = httpx.get(f"{stack.base_url}/api/experiments/{experiment_id}/evaluation").json()
    assert sum(map(sum, evaluation["confusion_matrix"])) == 100
    report: dict[str, Any] = evaluation["report"]
    assert set(evaluation["classes"]) < set(report)
    assert {"accuracy", "macro avg", "weighted avg"} < set(report)
    assert len(evaluation["classes"]) == 10
    assert experiment["test_accuracy"] == evaluation["accuracy"]
    print(f"\nlaunch -> first epoch row: {first_epoch_seconds:.1f} s")
    assert_private(stack.data_dir)


def assert_private(data_dir: Path) -> None:
    """What `cifarlab up` and its worker wrote (database, broker files, checkpoints, model,
    test set, dataset cache) is its user's alone."""
    written = {path.relative_to(data_dir).as_posix(): path for path in data_dir.rglob("*")}
    assert {"cifarlab.db", "secret_key", "redis/password"} <= set(written)
    assert any(name.endswith("/model.keras") for name in written)
    assert any(name.startswith("artifacts/test-sets/") for name in written)
    modes = {name: stat.S_IMODE(path.lstat().st_mode) for name, path in written.items()
             if path.exists()}  # fmt: skip
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert {name: oct(mode) for name, mode in modes.items() if mode & 0o077} == {}


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIFARLAB_API_URL": stack.base_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_cli_launch_follow_then_list_and_show(stack: Stack) -> None:
    result = run_cli(
        stack, "launch", "--model", "custom_cnn", "--name", "from cli",
        "--set", "epochs=2", "--set", "train_size=300", "--set", "test_size=100",
        "--set", "batch_size=32", "--follow",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "epoch 2/2" in result.stdout
    assert "test accuracy:" in result.stdout
    experiment_id = result.stdout.split("launched experiment ")[1].split(":")[0]
    listing = run_cli(stack, "list")
    assert "from cli" in listing.stdout and "succeeded" in listing.stdout
    shown = run_cli(stack, "show", experiment_id)
    assert "succeeded" in shown.stdout and "val_accuracy" in shown.stdout


def test_cli_refuses_bad_hyperparameter_naming_it_and_queues_nothing(stack: Stack) -> None:
    before = httpx.get(f"{stack.base_url}/api/experiments").json()["total"]
    result = run_cli(stack, "launch", "--set", "epochs=0")
    assert result.returncode == 2
    assert "hyperparameters.epochs" in result.stdout
    unknown = run_cli(stack, "launch", "--set", "epoch=3")
    assert unknown.returncode == 2 and "hyperparameters.epoch" in unknown.stdout
    assert httpx.get(f"{stack.base_url}/api/experiments").json()["total"] == before


def test_health_reports_one_worker_online(stack: Stack) -> None:
    health = httpx.get(f"{stack.base_url}/api/health").json()
    assert health["status"] == "ok"
    assert health["database"] == health["broker"] == "ok"
    assert len(health["workers"]) == 1
