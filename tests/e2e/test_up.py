"""`cifarlab up` starts every part and leaves nothing running after SIGINT or SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import start_stack

pytestmark = pytest.mark.e2e


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


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
