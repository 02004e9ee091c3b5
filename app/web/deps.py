"""FastAPI dependencies, injected through ``Annotated`` aliases."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.db import get_sessionmaker
from app.services.history_cache import HistoryCache
from app.services.runs_table import SortedColumns
from app.services.sweep_cache import SweepCache


class Admission:
    """One semaphore per event loop: uvicorn runs one loop per process, while a test client
    may run a loop per calling thread, and asyncio's primitives must not cross loops."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    def here(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._by_loop.get(loop)
        if semaphore is None:
            semaphore = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return semaphore


def install(app: FastAPI) -> None:
    """What the dependencies below read from the app: one of each per web process.

    Admission: at most ``request_concurrency`` requests of one process touch the database at
    once. Measured with 20 concurrent readers (`cifarlab bench web`, SQLite): unlimited, a
    list page cost 6.4 ms of CPU; four at a time, 4.8 ms; two, 4.1 ms (docs/benchmarks.md). A
    request waits here, before it opens a session, so a waiting request never holds a
    database connection that an admitted one needs.

    Password checks take their own turn (``password_hash_concurrency``), outside admission:
    Argon2 takes a few hundred ms, and held in a request slot, 30 sign-ins in a row made
    every signed-in page wait (3.9 s instead of 0.01 s).
    """
    settings = get_settings()
    app.state.admission = Admission(settings.request_concurrency)
    app.state.hashing = Admission(settings.password_hash_concurrency)
    app.state.histories = HistoryCache()
    app.state.sorted_columns = SortedColumns()
    app.state.sweeps = SweepCache()


@asynccontextmanager
async def admitted_session(request: Request) -> AsyncIterator[Session]:
    """A database session inside the request's admission turn, for handlers that must give
    the turn back midway (sign-in, around its password check)."""
    admission: Admission = request.app.state.admission
    async with admission.here():
        with get_sessionmaker()() as session:
            yield session


async def get_session(request: Request) -> AsyncIterator[Session]:
    async with admitted_session(request) as session:
        yield session


def hashing_turn(request: Request) -> asyncio.Semaphore:
    hashing: Admission = request.app.state.hashing
    return hashing.here()


SessionDep = Annotated[Session, Depends(get_session)]


def get_histories(request: Request) -> HistoryCache:
    histories: HistoryCache = request.app.state.histories
    return histories


HistoriesDep = Annotated[HistoryCache, Depends(get_histories)]


def get_sorted_columns(request: Request) -> SortedColumns:
    sorted_columns: SortedColumns = request.app.state.sorted_columns
    return sorted_columns


SortedColumnsDep = Annotated[SortedColumns, Depends(get_sorted_columns)]


def get_sweep_cache(request: Request) -> SweepCache:
    cache: SweepCache = request.app.state.sweeps
    return cache


SweepCacheDep = Annotated[SweepCache, Depends(get_sweep_cache)]
