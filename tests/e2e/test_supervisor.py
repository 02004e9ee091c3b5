"""`cifarlab up` keeps the dashboard up while its parts die. SIGKILL the worker's main
process, or its pool process, mid-run: the web answers every poll throughout, the run is
requeued at once (the heartbeat timeout here is far longer than the test may take) and
resumes from its checkpoint, ending `succeeded` with each epoch exactly once. Redis and the
web server, SIGKILLed, are restarted too."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.factories import spec_data
from tests.support.polling import wait_until
from tests.support.processes import alive, descendants
from tests.support.servers import Stack, epochs, get, start_stack, stop_stack

pytestmark = pytest.mark.e2e
EPOCHS = 3


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, tiny_cifar10: Path) -> Iterator[Stack]:
    settings = {
        "CIFARLAB_HEARTBEAT_INTERVAL_SECONDS": "0.5",  # memory figures before the kill
        "CIFARLAB_HEARTBEAT_TIMEOUT_SECONDS": "3600",  # the reaper cannot be what saves it
        "CIFARLAB_WEB_PROCESSES": "1",
    }
    stack = start_stack(tmp_path_factory.mktemp("supervised"), tiny_cifar10, settings=settings)
    yield stack
    assert stop_stack(stack) == 0


class Poller:
    """Polls the web in a thread the whole time; every poll must be answered with a 200."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(0.25):
                for url in self.urls:
                    try:
                        status = client.get(url).status_code
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{url}: {exc!r}")
                        continue
                    if status == 200:
                        self.answered += 1
                    else:
                        self.failures.append(f"{url}: {status}")

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def worker_pid(stack: Stack, name: str) -> int:
    return next(w["pid"] for w in get(stack, "/api/workers") if w["name"] == name)


def run_and_kill(stack: Stack, pick_victim: Callable[[dict], int]) -> tuple[dict, int, Poller]:
    """Launch, SIGKILL the process ``pick_victim`` names once epoch 1 is recorded (the run is
    mid-epoch 2), and wait for the run to end, polling the web all along."""
    spec = spec_data(epochs=EPOCHS, train_size=500, test_size=50, batch_size=25, filters=32,
                     early_stopping=False)  # fmt: skip
    response = httpx.post(f"{stack.base_url}/api/experiments", json=spec, timeout=10)
    assert response.status_code == 201, response.text
    experiment_id = response.json()["id"]
    path = f"/api/experiments/{experiment_id}"
    with Poller([f"{stack.base_url}{path}", f"{stack.base_url}/workers/live"]) as poller:
        wait_until(lambda: len(epochs(stack, experiment_id)) >= 1, 240)
        running = get(stack, path)
        assert running["status"] == "running" and running["current_epoch"] < EPOCHS, running
        victim = pick_victim(running)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: get(stack, path)["status"] in {"succeeded", "failed", "cancelled"}, 300)
    return get(stack, path), victim, poller


def assert_resumed(stack: Stack, result: dict, poller: Poller) -> None:
    assert poller.failures == [] and poller.answered > 10
    assert result["status"] == "succeeded", result["error"]
    assert result["attempts"] == 2
    assert epochs(stack, result["id"]) == list(range(1, EPOCHS + 1))


def pool_pid(experiment: dict) -> int:
    """The pool process that claimed the run names itself in worker_host: "vm (pid 123)"."""
    found = re.search(r"\(pid (\d+)\)", experiment["worker_host"])
    assert found, experiment["worker_host"]
    return int(found[1])


def test_sigkilled_worker_is_restarted_and_its_run_resumes(up: Stack) -> None:
    orphans: list[int] = []

    def main_process(running: dict) -> int:
        orphans.append(pool_pid(running))
        return worker_pid(up, running["worker_name"])

    result, victim, poller = run_and_kill(up, main_process)
    assert_resumed(up, result, poller)
    assert not alive(orphans[0])  # the pool process did not train on as an orphan
    interruption = result["interruption"]
    assert interruption.startswith(
        "Attempt 1: the worker was killed (SIGKILL), most likely out of memory: "
    ), interruption
    assert "GiB in use" in interruption and "the training process" in interruption
    [worker] = [w for w in get(up, "/api/workers") if w["name"] == result["worker_name"]]
    assert worker["pid"] != victim  # a new process under the same name
    assert (worker["restarts"], worker["last_exit"]) == (1, "killed by SIGKILL")
    assert worker["name"].startswith("cifarlab-")


def test_sigkilled_pool_process_is_replaced_and_its_run_resumes(up: Stack) -> None:
    mains: list[int] = []

    def pool_process(running: dict) -> int:
        mains.append(worker_pid(up, running["worker_name"]))
        return pool_pid(running)

    result, _, poller = run_and_kill(up, pool_process)
    assert_resumed(up, result, poller)
    assert result["interruption"].startswith(
        "Attempt 1: the worker's training process was killed (SIGKILL), most likely out of memory: "
    ), result["interruption"]
    assert worker_pid(up, result["worker_name"]) == mains[0]  # the main process lived on


def started_by_up(stack: Stack, command: bytes) -> list[int]:
    """Processes under `cifarlab up` whose command line holds ``command``."""
    found = []
    for pid in descendants(stack.process.pid):
        try:
            if command in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue
    return found


def test_sigkilled_redis_is_restarted_while_the_web_answers(up: Stack) -> None:
    def redis_pids() -> list[int]:
        return started_by_up(up, b"redis-server")

    [victim] = redis_pids()
    with Poller([f"{up.base_url}/api/experiments", f"{up.base_url}/workers/live"]) as poller:
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(redis_pids()) == 1 and redis_pids() != [victim], 60)
        # The worker reconnects to the restarted broker and answers its ping again.
        wait_until(lambda: get(up, "/api/health")["status"] == "ok", 120)
    assert poller.failures == [] and poller.answered > 0


def test_sigkilled_web_server_is_restarted(up: Stack) -> None:
    [victim] = started_by_up(up, b"app.web_server")
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: started_by_up(up, b"app.web_server") not in ([], [victim]), 60)

    def answers() -> bool:
        try:
            return httpx.get(f"{up.base_url}/api/health", timeout=5).json()["status"] == "ok"
        except httpx.HTTPError:
            return False

    wait_until(answers, 120)
