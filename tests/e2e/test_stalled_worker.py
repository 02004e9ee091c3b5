"""A stalled worker (SIGSTOP past the heartbeat timeout, then SIGCONT) does not train its
run a second time beside the worker that took it over: its next write finds its attempt
fenced off, and it stops without writing."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support import servers
from tests.support.factories import TINY_RUN
from tests.support.polling import wait_until
from tests.support.servers import Cluster, epochs, experiment, start_cluster

pytestmark = pytest.mark.e2e
HEARTBEAT_TIMEOUT_SECONDS = 8  # short, to stall past it quickly; live workers beat every 0.5 s


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Cluster]:
    settings = {
        "CIFARLAB_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
    }
    with start_cluster(tmp_path_factory.mktemp("stall"), tiny_cifar10, settings) as cluster:
        yield cluster


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


def stop_outside_a_write(pid: int, database: Path) -> None:
    """SIGSTOP ``pid`` at a moment it holds no SQLite write lock. Stopped inside a write, it
    would keep every other writer out, the reaper's requeue included, for as long as it is
    stopped: no takeover could happen (a limit of SQLite, noted in docs/architecture.md), and
    the test would wait on a race rather than test the fencing."""
    for _ in range(50):
        os.kill(pid, signal.SIGSTOP)
        try:
            with closing(sqlite3.connect(database, timeout=0.2)) as probe:
                probe.execute("BEGIN IMMEDIATE")  # takes the write lock, or waits for it
                probe.rollback()
            return
        except sqlite3.OperationalError:  # "database is locked": stopped mid-write
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
    raise AssertionError("the worker held the database's write lock at every try")


def test_a_stalled_worker_stops_when_it_wakes_and_the_survivor_finishes(
    cluster: Cluster,
) -> None:
    experiment_id = servers.launch(cluster, **TINY_RUN, epochs=10, early_stopping=False)
    with EpochWatch(cluster, experiment_id) as watch:
        wait_until(lambda: len(epochs(cluster, experiment_id)) >= 2, 120)
        stalled = experiment(cluster, experiment_id)
        child = int(re.search(r"pid (\d+)", stalled["worker_host"]).group(1))  # type: ignore[union-attr]
        stop_outside_a_write(child, cluster.logs["web"].parent / "cifarlab.db")
        try:
            # Requeued after the timeout, claimed by the other worker, which goes past it.
            wait_until(
                lambda: (
                    (now := experiment(cluster, experiment_id))["attempts"] == 2
                    and now["current_epoch"] > stalled["current_epoch"] + 1
                ),
                120,
            )
        finally:
            os.kill(child, signal.SIGCONT)
        wait_until(lambda: experiment(cluster, experiment_id)["status"] != "running", 120)
    result = experiment(cluster, experiment_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["attempts"] == 2
    victim = stalled["worker_name"].split("@")[0]
    assert result["worker_name"].split("@")[0] != victim
    assert epochs(cluster, experiment_id) == list(range(1, 11))
    shown = [epoch for _, epoch in watch.seen]
    assert shown == sorted(shown), f"current_epoch went back: {watch.seen}"
    # The woken child logs its own line, then its worker the task's result: a moment later.
    log = cluster.logs[victim]
    wait_until(lambda: "'superseded'" in log.read_text(), 60, what="the superseded result")
    assert "attempt 1 no longer holds it" in log.read_text()
    assert "'succeeded'" not in log.read_text()
