"""Engine and session factory, with the SQLite pragmas concurrent web + worker access needs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from app.core.config import get_settings


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the web read while a worker writes an epoch; busy_timeout waits
    # for a writer instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_private(database: Path) -> None:
    """Make the SQLite file 0600 (its directory 0700) before SQLite does, whatever the
    umask: SQLite gives the -wal and -shm files the database file's mode."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))


def make_engine(url: str, *, pooled: bool = True) -> Engine:
    """``pooled=False``: each session's connection closes with it."""
    pool = {} if pooled else {"poolclass": NullPool}
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            _create_private(Path(database))
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


@lru_cache
def get_engine() -> Engine:
    return make_engine(get_settings().sqlalchemy_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session for code outside a request (worker, CLI): commit on success, else roll back."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def unpooled_session_scope() -> Iterator[Session]:
    """Like ``session_scope``, on an engine of its own that is gone afterwards: for Celery's
    main process, which forks pool children and so must keep no connection, nor a cached
    engine that the children would inherit and share."""
    engine = make_engine(get_settings().sqlalchemy_url, pooled=False)
    try:
        with Session(engine) as session, session.begin():
            yield session
    finally:
        engine.dispose()
