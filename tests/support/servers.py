"""Real server processes for the end-to-end tests, started as users start them.

``start_stack``: `cifarlab up` (embedded Redis, a supervised worker, the web server).
``start_cluster``: Redis, the web server and named workers as separate processes, each
logging to a file, for tests that stop or kill one worker while another runs on.
``serve_app``: the web app alone in uvicorn, as production serves it, on a test's database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import uvicorn

from app.embedded_redis import free_port, redis_url, start_redis
from app.web.main import create_app
from tests.support.factories import spec_data
from tests.support.polling import wait_until

FINISHED = {"succeeded", "failed", "cancelled"}
START_SECONDS = 120


class Server(Protocol):
    base_url: str


@dataclass
class Stack:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log: Path  # its output: with --verbose, a line per request, for a failed test's report

    def log_tail(self, lines: int = 150) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Cluster:
    base_url: str
    workers: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]  # by process name: "web", then each worker's


def clean_environment(**settings: str) -> dict[str, str]:
    """This process's environment without any CIFARLAB_* variable the tests set, plus these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **settings)
    return env


def healthy(base_url: str, workers: int = 1) -> bool:
    """The web answers and says the database, broker and ``workers`` workers are up."""
    try:
        health = httpx.get(f"{base_url}/api/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return health["status"] == "ok" and len(health["workers"]) >= workers


@contextmanager
def serve_app(data_dir: Path) -> Iterator[str]:
    """uvicorn serving ``create_app`` on a free port with ``data_dir``'s database, in a thread
    of this process: the same server as production's, without a second interpreter importing
    the app for each test. Yields its base URL once it listens, and stops it afterwards."""
    assert os.environ["CIFARLAB_DATA_DIR"] == str(data_dir)  # the settings create_app reads
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 60, what="uvicorn listening")
        assert server.started, "uvicorn stopped before it listened"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop within 30 s"


def start_stack(
    data_dir: Path,
    cifar10_path: Path,
    timeout_seconds: float = START_SECONDS,
    settings: Mapping[str, str] | None = None,
) -> Stack:
    """`cifarlab up --verbose` as a user runs it, waited on until a worker answers;
    ``settings``: CIFARLAB_* variables to set. Its output goes to a file beside ``data_dir``,
    which a failed test's report ends with (tests/conftest.py)."""
    port = free_port()
    env = clean_environment(CIFARLAB_CIFAR10_PATH=str(cifar10_path), **(settings or {}))
    argv = [sys.executable, "-m", "app.cli", "up", "--verbose", "--port", str(port)]
    log = data_dir.with_name(f"{data_dir.name}-up.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--data-dir", str(data_dir)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    stack = Stack(f"http://127.0.0.1:{port}", data_dir, process, log)

    def up() -> bool:
        if process.poll() is not None:
            ended = f"cifarlab up exited with {process.returncode}"
            raise RuntimeError(f"{ended}; its log ends:\n{stack.log_tail()}")
        return healthy(stack.base_url)

    try:
        wait_until(up, timeout_seconds, interval=0.5, what="cifarlab up healthy")
    except AssertionError as exc:
        stop_stack(stack)
        raise AssertionError(f"{exc}; its log ends:\n{stack.log_tail()}") from None
    return stack


def stop_stack(stack: Stack) -> int:
    stack.process.send_signal(signal.SIGTERM)
    return stack.process.wait(timeout=60)


def stop_group(process: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
    """Signal a process started in a session of its own, and everything it started."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def start_cluster(
    data_dir: Path,
    cifar10_path: Path,
    settings: Mapping[str, str],
    worker_names: tuple[str, ...] = ("w1", "w2"),
) -> Iterator[Cluster]:
    """Redis, a migrated database, the web server and one worker per name (``w1@host``),
    waited on until every worker answers; all stopped on exit."""
    redis_port, web_port = free_port(), free_port()
    env = clean_environment(
        CIFARLAB_DATA_DIR=str(data_dir),
        CIFARLAB_REDIS_URL=redis_url(data_dir, redis_port),
        CIFARLAB_CIFAR10_PATH=str(cifar10_path),
        **settings,
    )
    redis_process = start_redis(data_dir, redis_port)
    python = sys.executable
    commands = {"web": [python, "-m", "app.cli", "web", "--port", str(web_port)]}
    commands |= {n: [python, "-m", "app.cli", "worker", "--name", f"{n}@%h"] for n in worker_names}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: data_dir / f"{name}.log" for name in commands}
    try:
        subprocess.run([python, "-m", "app.cli", "migrate"], env=env, check=True)
        for name, argv in commands.items():
            with logs[name].open("wb") as log:
                processes[name] = subprocess.Popen(
                    argv, env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT
                )
        base_url = f"http://127.0.0.1:{web_port}"
        wait_until(
            lambda: healthy(base_url, len(worker_names)), START_SECONDS, interval=0.5,
            what=f"{len(worker_names)} workers up",
        )  # fmt: skip
        workers = {name: processes[name] for name in worker_names}
        yield Cluster(base_url=base_url, workers=workers, logs=logs)
    finally:
        for process in processes.values():
            stop_group(process)
        redis_process.terminate()
        redis_process.wait(timeout=10)


# --- the experiments API, as a client of a running server -------------------------------------


def get(server: Server, path: str) -> Any:
    response = httpx.get(f"{server.base_url}{path}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def launch(server: Server, **hyperparameters: Any) -> int:
    """POST a tiny custom CNN (``spec_data``) and return its id."""
    response = httpx.post(
        f"{server.base_url}/api/experiments", json=spec_data(**hyperparameters), timeout=10
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def experiment(server: Server, experiment_id: int) -> dict[str, Any]:
    return get(server, f"/api/experiments/{experiment_id}")  # type: ignore[no-any-return]


def epochs(server: Server, experiment_id: int) -> list[int]:
    rows = get(server, f"/api/experiments/{experiment_id}/metrics")["epochs"]
    return [row["epoch"] for row in rows]


def finished(server: Server, experiment_id: int) -> bool:
    return experiment(server, experiment_id)["status"] in FINISHED


def wait_until_finished(
    server: Server, experiment_id: int, timeout_seconds: float = 240
) -> dict[str, Any]:
    """The experiment once it has succeeded, failed or been cancelled."""
    wait_until(
        lambda: finished(server, experiment_id), timeout_seconds, interval=0.5,
        ignoring=(httpx.HTTPError,), what=f"experiment {experiment_id} finished",
    )  # fmt: skip
    return experiment(server, experiment_id)
