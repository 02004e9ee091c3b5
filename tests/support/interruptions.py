"""A worker killed mid-run, for tests of resuming: the run stops right after a checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from worker.checkpoints import CheckpointCallback


class Killed(Exception):
    """Stands in for a SIGKILL: the process stops right after a checkpoint is saved."""


@contextmanager
def killed_after_checkpoint(monkeypatch: pytest.MonkeyPatch, epochs_done: int) -> Iterator[None]:
    """Inside, a run saves the checkpoint of ``epochs_done`` epochs and dies (``Killed``,
    expected and caught here); after it, checkpoints save as usual again."""
    save = CheckpointCallback.on_epoch_end

    def save_then_die(callback: CheckpointCallback, epoch: int, logs: Any = None) -> None:
        save(callback, epoch, logs)
        if epoch + 1 == epochs_done:
            raise Killed

    monkeypatch.setattr(CheckpointCallback, "on_epoch_end", save_then_die)
    with pytest.raises(Killed):
        yield
    monkeypatch.setattr(CheckpointCallback, "on_epoch_end", save)
