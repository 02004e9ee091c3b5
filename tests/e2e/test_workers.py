"""Two real Celery workers on one Redis: sharing work, surviving SIGKILL, honouring cancel."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import servers
from tests.support.factories import TINY_RUN
from tests.support.polling import wait_until
from tests.support.processes import alive, celery_pool_processes, loads_tensorflow
from tests.support.servers import Cluster, epochs, experiment, finished, start_cluster, stop_group
from worker.temporary_folder import folder_owner

pytestmark = pytest.mark.e2e
# Roomy: a loaded CI machine must not reap live runs (24 beats missed in a row); short
# enough that the SIGKILLed worker's run is requeued within 12 to 18 s.
HEARTBEAT_INTERVAL_SECONDS = 0.5
HEARTBEAT_TIMEOUT_SECONDS = 12


@pytest.fixture(scope="module")
def machine_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' TMPDIR: the machine's temporary folder, as they see it."""
    return tmp_path_factory.mktemp("machine-tmp")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path, machine_tmp: Path
) -> Iterator[Cluster]:
    settings = {
        "CIFARLAB_HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_INTERVAL_SECONDS),
        "CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
        "TMPDIR": str(machine_tmp),
    }
    with start_cluster(tmp_path_factory.mktemp("cluster"), tiny_cifar10, settings) as cluster:
        yield cluster


def launch(cluster: Cluster, **hyperparameters: object) -> int:
    return servers.launch(cluster, **TINY_RUN, **hyperparameters)


def test_an_idle_workers_pool_process_has_tensorflow_loaded_and_its_parent_has_not(
    cluster: Cluster,
) -> None:
    """A run launched on an idle worker starts without waiting 4 s for TensorFlow's import;
    the parent that forks must never load it (a forked TensorFlow runtime deadlocks)."""
    wait_until(lambda: len(httpx.get(f"{cluster.base_url}/api/workers").json()) == 2, 60)
    main = cluster.workers["w1"].pid  # Celery's main process: `cifarlab worker` execs it
    (child,) = celery_pool_processes(main)
    wait_until(lambda: loads_tensorflow(child), 60, what="TensorFlow loaded in the pool process")
    assert not loads_tensorflow(main)


def test_two_workers_share_four_experiments_once_each(cluster: Cluster) -> None:
    wait_until(lambda: len(httpx.get(f"{cluster.base_url}/api/workers").json()) == 2, 60)
    listed = httpx.get(f"{cluster.base_url}/api/workers").json()
    assert {w["name"].split("@")[0] for w in listed} == {"w1", "w2"}
    assert all(w["device"].startswith("CPU") for w in listed)
    ids = [launch(cluster, epochs=2) for _ in range(4)]
    wait_until(lambda: all(finished(cluster, i) for i in ids), 300)
    results = [experiment(cluster, i) for i in ids]
    assert [r["status"] for r in results] == ["succeeded"] * 4, [r["error"] for r in results]
    assert {r["worker_name"].split("@")[0] for r in results} == {"w1", "w2"}
    assert [r["attempts"] for r in results] == [1] * 4  # none ran twice
    assert all(epochs(cluster, i) == [1, 2] for i in ids)  # no metric row lost


def test_sigkilled_worker_run_resumes_on_the_other(cluster: Cluster) -> None:
    experiment_id = launch(cluster, epochs=6)
    wait_until(lambda: len(epochs(cluster, experiment_id)) >= 2, 180)
    victim = experiment(cluster, experiment_id)["worker_name"].split("@")[0]
    stop_group(cluster.workers[victim], signal.SIGKILL)  # the whole worker: main and pool child
    wait_until(lambda: finished(cluster, experiment_id), 240)
    result = experiment(cluster, experiment_id)
    assert result["status"] == "succeeded", result["error"]
    assert result["attempts"] == 2
    assert result["worker_name"].split("@")[0] != victim
    assert epochs(cluster, experiment_id) == [1, 2, 3, 4, 5, 6]


def test_cancel_stops_a_running_experiment_and_keeps_its_epochs(cluster: Cluster) -> None:
    experiment_id = launch(cluster, epochs=200, early_stopping=False)
    wait_until(lambda: len(epochs(cluster, experiment_id)) >= 1, 180)
    response = httpx.post(f"{cluster.base_url}/api/experiments/{experiment_id}/cancel")
    assert response.json()["status"] == "cancelled"
    wait_until(lambda: experiment(cluster, experiment_id)["finished_at"] is not None, 60)
    kept = epochs(cluster, experiment_id)
    # No more epochs come: the worker has logged its task's result, so the training loop
    # that could write one has ended (and finished_at fences off any write of the attempt).
    worker = experiment(cluster, experiment_id)["worker_name"].split("@")[0]

    def task_returned() -> bool:
        log = cluster.logs[worker].read_text()
        return f"experiment {experiment_id}: cancel requested" in log and "s: 'cancelled'" in log

    wait_until(task_returned, 60, what="the train task returned 'cancelled'")
    assert epochs(cluster, experiment_id) == kept and len(kept) < 200
    assert experiment(cluster, experiment_id)["status"] == "cancelled"


def test_finished_runs_leave_nothing_in_the_machines_temporary_folder(
    cluster: Cluster, machine_tmp: Path
) -> None:
    """TensorFlow writes a file for each function it traces and deletes it at exit, which a
    pool process (ending with os._exit) skips: each run had left its files there for good."""
    ids = [launch(cluster, epochs=1) for _ in range(2)]
    wait_until(lambda: all(finished(cluster, i) for i in ids), 180)
    assert [experiment(cluster, i)["status"] for i in ids] == ["succeeded"] * 2

    def only_running_processes_folders() -> bool:
        # The pool processes that trained have ended; only their successors' folders remain.
        return all(
            entry.name.startswith("pymp-")  # billiard's, of each running worker
            or (
                (owner := folder_owner(entry)) is not None
                and alive(owner)
                and not any(entry.iterdir())
            )
            for entry in machine_tmp.iterdir()
        )

    wait_until(only_running_processes_folders, 60, what="the ended pool processes' files gone")
