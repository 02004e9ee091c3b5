"""Files a worker puts in place only while its attempt still holds the run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.core import crud
from app.core.db import session_scope


@contextmanager
def holding(lease: crud.Lease) -> Iterator[None]:
    """Runs the block in a transaction whose fenced heartbeat has just confirmed the lease.

    The heartbeat's UPDATE keeps the experiment's row locked (PostgreSQL) or the database's
    write lock held (SQLite) until the block ends, so a requeue cannot slip in between the
    check and a rename inside the block. Raises ``crud.LeaseLost`` before the block runs when
    another attempt holds the run."""
    with session_scope() as session:
        crud.beat(session=session, lease=lease)
        yield
