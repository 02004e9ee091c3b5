"""Sweep views, kept by the web process while their sweep does not change.

Reading a 1,000-trial sweep (its trials, each one's best epoch, counts and ETA) and shaping it
for the page, its live poll or the API took 100-300 ms of CPU; twenty people watching one
sweep each paid it every two seconds. Each entry is checked against ``sweeps.version`` (one
aggregate over the sweep's trials, about a millisecond) and is read afresh when a trial
starts, records an epoch, changes status or finishes. What the version cannot see (a trial
renamed) shows within ``MAX_AGE_SECONDS``. Whatever a caller derives from a view (the page's
rows, the live JSON, the API body) is kept with it by ``CachedSweep.part``, so a view is shaped
once per version, not once per request. Each web process has its own cache
(``app.state.sweeps``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from app.core.crud import SweepVersion
from app.services import sweeps
from app.services.sweeps import SweepView

MAX_AGE_SECONDS = 30.0
MAX_SWEEPS = 16
"""A 1,000-trial view with its parts is about 3 MB."""

T = TypeVar("T")


class CachedSweep:
    """One version of a sweep's view, and what callers made of it."""

    def __init__(self, version: SweepVersion, view: SweepView) -> None:
        self.version = version
        self.view = view
        self.made_at = time.monotonic()
        self._parts: dict[str, Any] = {}

    def part(self, name: str, build: Callable[[SweepView], T]) -> T:
        """``build(view)``, made once per version (two threads may both make it the first
        time; either result is the same)."""
        if name not in self._parts:
            self._parts[name] = build(self.view)
        value: T = self._parts[name]
        return value


class SweepCache:
    """The most recently read sweeps, first in first out past ``MAX_SWEEPS``."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, CachedSweep] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, sweep_id: int) -> CachedSweep:
        """The sweep's current view; raises ``NotFound`` as ``sweeps.view`` does. The version
        is read before the view, so a change between the two only makes the next read
        refresh again, never keeps a stale view."""
        version = sweeps.version(session, sweep_id)
        with self._lock:
            entry = self._entries.get(sweep_id)
        fresh = entry is not None and entry.version == version
        if entry is not None and fresh and time.monotonic() - entry.made_at < MAX_AGE_SECONDS:
            return entry
        entry = CachedSweep(version, sweeps.view(session, sweep_id))
        with self._lock:
            self._entries[sweep_id] = entry
            self._entries.move_to_end(sweep_id)
            while len(self._entries) > MAX_SWEEPS:
                self._entries.popitem(last=False)
        return entry
