"""`cifarlab up` starts every part and leaves nothing running after SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.embedded_redis import free_port
from tests.support.factories import TINY_RUN
from tests.support.polling import wait_until
from tests.support.processes import alive, descendants
from tests.support.servers import Stack, launch, start_stack, wait_until_finished

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_every_process_it_started(
    tmp_path: Path, tiny_cifar10: Path, signum: signal.Signals
) -> None:
    stack = start_stack(tmp_path / "data", tiny_cifar10)
    started = descendants(stack.process.pid)
    assert len(started) >= 3  # redis, worker (+ its pool child), web
    stack.process.send_signal(signum)
    assert stack.process.wait(timeout=60) == 0
    assert [pid for pid in started if alive(pid)] == []
    assert (tmp_path / "data" / "cifarlab.db").exists()
    assert (tmp_path / "data" / "redis").is_dir()


def test_start_up_log_is_short_and_ends_with_the_address(
    tmp_path: Path, tiny_cifar10: Path
) -> None:
    """Without --verbose: no migration, Celery, uvicorn or TensorFlow chatter, even once a run
    has trained; the address last, whole."""
    port, data = free_port(), tmp_path / "data"
    log = tmp_path / "up.log"
    # As a user starts it: the suite's own TF_CPP_MIN_LOG_LEVEL would hide TensorFlow's lines.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CIFARLAB_") and k != "TF_CPP_MIN_LOG_LEVEL"
    }
    env["COLUMNS"] = "60"  # narrower than the line: it must not wrap all the same
    env["CIFARLAB_CIFAR10_PATH"] = str(tiny_cifar10)
    argv = [sys.executable, "-m", "app.cli", "up", "--port", str(port), "--data-dir", str(data)]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:

        def started() -> bool:
            assert process.poll() is None, log.read_text()
            return "press Ctrl-C to stop" in log.read_text()

        wait_until(started, 120, what="the address printed")
        # A second `up` on the same data folder would start a second Redis on the same file.
        again = [*argv[:5], str(free_port()), *argv[6:]]
        refused = subprocess.run(again, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stdout.startswith(
            f"error: cifarlab up is already running on {data} (pid {process.pid}, "
            f"http://127.0.0.1:{port}); use it, stop it first, or give another --data-dir"
        ), refused.stdout
        # Each pool process imports TensorFlow, which logs as it loads (before its log level
        # applies). A run that has finished proves the first import over and its lines out.
        # It augments at random: TensorFlow logged an error about that pipeline (data.py).
        server = Stack(f"http://127.0.0.1:{port}", data, process, log)
        run = launch(server, epochs=1, augment_translate=0.0625, **TINY_RUN)
        trained = wait_until_finished(server, run, 120)
        assert trained["status"] == "succeeded", trained["error"]
        lines = log.read_text().splitlines()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert lines[-1] == (
        f"cifarlab is running at http://127.0.0.1:{port} (data in {tmp_path / 'data'}); "
        "press Ctrl-C to stop"
    ), lines
    text = "\n".join(lines)
    noises = ("alembic", "[tasks]", "celery@", "Started server process", "Uvicorn", "I0000 ",
              "E0000 ", "absl::InitializeLog")  # fmt: skip
    for noise in noises:
        assert noise not in text, noise


@pytest.mark.parametrize("taken", ["--port", "--redis-port"])
def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path, taken: str) -> None:
    """Another server holds the port (a plain listening socket here; another `cifarlab up`
    alike): `up` says so and exits 2 having started nothing. With the web's port it used to
    start everything, restart its web forever, and print "running at" on the other server's
    health; with Redis's, it stopped with a traceback from a PING that never got an answer."""
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIFARLAB_")}
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        ports = {"--port": str(free_port()), "--redis-port": str(free_port()), taken: str(port)}
        argv = [sys.executable, "-m", "app.cli", "up", "--data-dir", str(data)]
        argv += [word for option, number in ports.items() for word in (option, number)]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use. Is cifarlab "
        f"already running there? Stop it, or choose another {taken}."
    ), result.stdout
    assert "running at" not in result.stdout + result.stderr
    assert not data.exists()
