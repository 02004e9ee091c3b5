"""Two real Celery workers on one Redis: sharing work, surviving SIGKILL, honouring cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.embedded_redis import free_port, redis_url, start_redis
from tests.factories import spec_data

pytestmark = pytest.mark.e2e
HEARTBEAT_TIMEOUT_SECONDS = 20  # roomy: a loaded CI machine must not reap live runs


@dataclass
class Cluster:
    base_url: str
    workers: dict[str, subprocess.Popen[bytes]]


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, start_new_session=True)


def _stop(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("cluster")
    redis_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    env |= {
        "CIFARLAB_DATA_DIR": str(data_dir),
        "CIFARLAB_REDIS_URL": redis_url(data_dir, redis_port),
        "CIFARLAB_CIFAR10_PATH": str(tiny_cifar10),
        "CIFARLAB_HEARTBEAT_INTERVAL_SECONDS": "1",
        "CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    redis_process = start_redis(data_dir, redis_port)
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True)
    python = sys.executable
    web = _start([python, "-m", "app.cli", "web", "--port", str(web_port)], env)
    workers = {
        name: _start([python, "-m", "app.cli", "worker", "--name", f"{name}@%h"], env)
        for name in ("w1", "w2")
    }
    base_url = f"http://127.0.0.1:{web_port}"
    _wait_for(lambda: len(httpx.get(f"{base_url}/api/health").json()["workers"]) == 2, 120)
    yield Cluster(base_url=base_url, workers=workers)
    for process in [*workers.values(), web]:
        _stop(process)
    redis_process.terminate()
    redis_process.wait(timeout=10)


def _wait_for(condition, timeout_seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"condition not met within {timeout_seconds} s")


def launch(cluster: Cluster, **hyperparameters: object) -> int:
    spec = spec_data(train_size=200, test_size=50, batch_size=50, filters=8, **hyperparameters)
    response = httpx.post(f"{cluster.base_url}/api/experiments", json=spec)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def experiment(cluster: Cluster, experiment_id: int) -> dict:
    return httpx.get(f"{cluster.base_url}/api/experiments/{experiment_id}").json()


def epochs(cluster: Cluster, experiment_id: int) -> list[int]:
    rows = httpx.get(f"{cluster.base_url}/api/experiments/{experiment_id}/metrics").json()
    return [row["epoch"] for row in rows["epochs"]]


def finished(cluster: Cluster, experiment_id: int) -> bool:
    return experiment(cluster, experiment_id)["status"] in {"succeeded", "failed", "cancelled"}


def test_two_workers_share_four_experiments_once_each(cluster: Cluster) -> None:
    _wait_for(lambda: len(httpx.get(f"{cluster.base_url}/api/workers").json()) == 2, 60)
    listed = httpx.get(f"{cluster.base_url}/api/workers").json()
    assert {w["name"].split("@")[0] for w in listed} == {"w1", "w2"}
    assert all(w["device"].startswith("CPU") for w in listed)
    ids = [launch(cluster, epochs=2) for _ in range(4)]
    _wait_for(lambda: all(finished(cluster, i) for i in ids), 300)
    results = [experiment(cluster, i) for i in ids]
    assert [r["status"] for r in results] == ["succeeded"] * 4, [r["error"] for r in results]
    assert {r["worker_name"].split("@")[0] for r in results} == {"w1", "w2"}
    assert [r["attempts"] for r in results] == [1] * 4  # none ran twice
    assert all(epochs(cluster, i) == [1, 2] for i in ids)  # no metric row lost


def test_sigkilled_worker_run_resumes_on_the_other(cluster: Cluster) -> None:
    experiment_id = launch(cluster, epochs=6)
    _wait_for(lambda: len(epochs(cluster, experiment_id)) >= 2, 180)
    victim = experiment(cluster, experiment_id)["worker_name"].split("@")[0]
    _stop(cluster.workers[victim], signal.SIGKILL)  # the whole worker: main and pool child
    _wait_for(lambda: finished(cluster, experiment_id), 240)
    result = experiment(cluster, experiment_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["attempts"] == 2
    assert result["worker_name"].split("@")[0] != victim
    assert epochs(cluster, experiment_id) == [1, 2, 3, 4, 5, 6]


def test_cancel_stops_a_running_experiment_and_keeps_its_epochs(cluster: Cluster) -> None:
    experiment_id = launch(cluster, epochs=200, early_stopping=False)
    _wait_for(lambda: len(epochs(cluster, experiment_id)) >= 1, 180)
    response = httpx.post(f"{cluster.base_url}/api/experiments/{experiment_id}/cancel")
    assert response.json()["status"] == "cancelled"
    _wait_for(lambda: experiment(cluster, experiment_id)["finished_at"] is not None, 60)
    kept = epochs(cluster, experiment_id)
    time.sleep(3)
    assert epochs(cluster, experiment_id) == kept and len(kept) < 200
    assert experiment(cluster, experiment_id)["status"] == "cancelled"
