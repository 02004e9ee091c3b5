"""Finished experiments' histories, kept by the web process between requests.

A comparison reads each experiment's epochs, thins its curves and diagnoses them: about half a
millisecond of CPU per experiment, every time the compare page or API is opened or polled. A
finished experiment's epochs never change again, so its ``History`` is computed once.

Each entry carries the experiment's version: status, finish time, attempts and last recorded
epoch. A retry, a requeue, a finish and any epoch written (``record_epoch`` moves the last
epoch in the same transaction) change it, so a changed history is read afresh. Only
experiments that are finished and have their finish time are kept: a running one that was
asked to cancel is ``cancelled`` before its worker writes its last epoch and finishes it.
Each web process has its own cache (``app.state.histories``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from app.core.models import Experiment, Status
from app.services.comparison import History

Version = tuple[Status, datetime, int, int]

MAX_EPOCHS = 100_000
"""What the cache holds at most, counted in epochs: 2,000 experiments of 50 epochs, about
42 MB (400 histories of 50 epochs measured 8.4 MB: 420 bytes per epoch, curve and diagnosis)."""


def _version(experiment: Experiment) -> Version | None:
    if not experiment.status.finished or experiment.finished_at is None:
        return None
    return (
        experiment.status,
        experiment.finished_at,
        experiment.attempts,
        experiment.current_epoch,
    )


class HistoryCache:
    """Least recently used first out, by epochs held; safe across the threads that serve
    synchronous routes."""

    def __init__(self, max_epochs: int = MAX_EPOCHS) -> None:
        self.max_epochs = max_epochs
        self._entries: OrderedDict[int, tuple[Version, History]] = OrderedDict()
        self._epochs = 0
        self._lock = threading.Lock()

    def get(self, experiment: Experiment) -> History | None:
        version = _version(experiment)
        with self._lock:
            entry = self._entries.get(experiment.id)
            if version is None or entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(experiment.id)
            return entry[1]

    def put(self, experiment: Experiment, history: History) -> None:
        """Keeps ``history`` if ``experiment`` is finished; otherwise does nothing."""
        version = _version(experiment)
        if version is None:
            return
        with self._lock:
            previous = self._entries.pop(experiment.id, None)
            if previous is not None:
                self._epochs -= _weight(previous[1])
            self._entries[experiment.id] = (version, history)
            self._epochs += _weight(history)
            while self._epochs > self.max_epochs and len(self._entries) > 1:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._epochs -= _weight(evicted)

    def __len__(self) -> int:
        return len(self._entries)


def _weight(history: History) -> int:
    """An imported report has no epochs but still takes an entry."""
    return max(history.epochs, 1)
