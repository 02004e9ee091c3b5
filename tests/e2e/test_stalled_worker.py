"""A stalled worker (SIGSTOP past the heartbeat timeout, then SIGCONT) does not train its
run a second time beside the worker that took it over: its next write finds its attempt
fenced off, and it stops without writing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.embedded_redis import free_port, redis_url, start_redis
from tests.e2e.test_workers import Cluster, _stop, _wait_for, epochs, experiment, launch

pytestmark = pytest.mark.e2e
HEARTBEAT_TIMEOUT_SECONDS = 8  # short, to stall past it quickly; live workers beat every 0.5 s


@dataclass
class LoggedCluster(Cluster):
    logs: dict[str, Path]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Cluster]:
    data_dir = tmp_path_factory.mktemp("stall")
    redis_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    env |= {
        "CIFARLAB_DATA_DIR": str(data_dir),
        "CIFARLAB_REDIS_URL": redis_url(data_dir, redis_port),
        "CIFARLAB_CIFAR10_PATH": str(tiny_cifar10),
        "CIFARLAB_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    redis_process = start_redis(data_dir, redis_port)
    subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True)
    python = sys.executable
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    commands = {
        "web": [python, "-m", "app.cli", "web", "--port", str(web_port)],
        "w1": [python, "-m", "app.cli", "worker", "--name", "w1@%h"],
        "w2": [python, "-m", "app.cli", "worker", "--name", "w2@%h"],
    }
    for name, argv in commands.items():
        logs[name] = data_dir / f"{name}.log"
        with logs[name].open("wb") as log:
            processes[name] = subprocess.Popen(
                argv, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
            )
    base_url = f"http://127.0.0.1:{web_port}"
    _wait_for(lambda: len(httpx.get(f"{base_url}/api/health").json()["workers"]) == 2, 120)
    workers = {name: processes[name] for name in ("w1", "w2")}
    yield LoggedCluster(base_url=base_url, workers=workers, logs=logs)
    for process in processes.values():
        _stop(process)
    redis_process.terminate()
    redis_process.wait(timeout=10)


class EpochWatch:
    """Polls the experiment's current_epoch in a thread and keeps every value it saw."""

    def __init__(self, cluster: Cluster, experiment_id: int) -> None:
        self.url = f"{cluster.base_url}/api/experiments/{experiment_id}"
        self.seen: list[tuple[int, int]] = []  # (attempts, current_epoch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> EpochWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            try:
                body = httpx.get(self.url).json()
            except (httpx.HTTPError, ValueError):
                continue
            self.seen.append((body["attempts"], body["current_epoch"]))


def test_a_stalled_worker_stops_when_it_wakes_and_the_survivor_finishes(
    cluster: LoggedCluster,
) -> None:
    experiment_id = launch(cluster, epochs=10, early_stopping=False)
    with EpochWatch(cluster, experiment_id) as watch:
        _wait_for(lambda: len(epochs(cluster, experiment_id)) >= 2, 120)
        stalled = experiment(cluster, experiment_id)
        child = int(re.search(r"pid (\d+)", stalled["worker_host"]).group(1))  # type: ignore[union-attr]
        os.kill(child, signal.SIGSTOP)
        try:
            # Requeued after the timeout, claimed by the other worker, which goes past it.
            _wait_for(
                lambda: (
                    (now := experiment(cluster, experiment_id))["attempts"] == 2
                    and now["current_epoch"] > stalled["current_epoch"] + 1
                ),
                120,
            )
        finally:
            os.kill(child, signal.SIGCONT)
        _wait_for(lambda: experiment(cluster, experiment_id)["status"] != "running", 120)
    result = experiment(cluster, experiment_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["attempts"] == 2
    victim = stalled["worker_name"].split("@")[0]
    assert result["worker_name"].split("@")[0] != victim
    assert epochs(cluster, experiment_id) == list(range(1, 11))
    shown = [epoch for _, epoch in watch.seen]
    assert shown == sorted(shown), f"current_epoch went back: {watch.seen}"
    log = cluster.logs[victim].read_text()
    assert "attempt 1 no longer holds it" in log
    assert "'superseded'" in log and "'succeeded'" not in log
