"""`cifarlab up` starts every part and leaves nothing running after SIGINT or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import start_stack
from tests.processes import alive, descendants

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
