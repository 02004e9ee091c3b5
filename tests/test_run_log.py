"""The run's own log: the worker's handler writes it, capped; the web reads its tail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.core import run_log
from app.core.config import get_settings
from app.core.run_log import run_log_path, tail
from worker.run_log import run_log as capturing


def test_tail_reads_the_last_lines_and_nothing_before_a_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    assert tail(path) == []
    path.write_text("".join(f"line {i}\n" for i in range(500)))
    assert tail(path) == [f"line {i}" for i in range(400, 500)]
    # A window that starts mid-line leaves that line out rather than show half of it.
    assert tail(path, lines=1000, max_bytes=20) == ["line 498", "line 499"]
    path.write_bytes(b"caf\xe9\n")
    assert tail(path) == ["caf\ufffd"]


def test_the_worker_log_goes_to_the_run_file_and_is_capped(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_log, "MAX_BYTES", 2000)
    monkeypatch.setattr("worker.run_log.MAX_BYTES", 2000)
    settings = get_settings()
    ours = logging.getLogger("worker.runner")
    with capturing(settings, 7):
        for i in range(200):
            ours.info("epoch %s done", i)
        logging.getLogger("tensorflow").warning("a library's warning")
    ours.info("after the run: not in its file")
    path = run_log_path(settings, 7)
    lines = tail(path)
    assert lines[-1].endswith("tensorflow: a library's warning")
    assert lines[-2].endswith("worker.runner: epoch 199 done")
    files = sorted(path.parent.glob("run.log*"))
    assert [f.name for f in files] == ["run.log", "run.log.1"]
    assert all(f.stat().st_size <= 2000 for f in files)
    assert logging.getLogger("worker").propagate and not logging.getLogger("worker").handlers
