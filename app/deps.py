"""FastAPI dependencies, injected through ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Request
from sqlalchemy.orm import Session

from app.config import get_settings
from app.db import get_sessionmaker


def install_admission(app: FastAPI) -> None:
    """At most ``request_concurrency`` requests of one process touch the database at once.

    Measured with 20 concurrent readers (`cifarlab bench web`, SQLite): unlimited, a list page
    cost 6.4 ms of CPU; four at a time, 4.8 ms; two, 4.1 ms (docs/benchmarks.md). A request
    waits here, before it opens a session, so a waiting request never holds a database
    connection that an admitted one needs.
    """
    app.state.admission = anyio.Semaphore(get_settings().request_concurrency)


async def get_session(request: Request) -> AsyncIterator[Session]:
    admission: anyio.Semaphore = request.app.state.admission
    async with admission:
        with get_sessionmaker()() as session:
            yield session


SessionDep = Annotated[Session, Depends(get_session)]
