"""A worker process's writes for tests/test_concurrency.py, in a module that imports only the
database layer: each spawned process imports the target's module afresh, and the test module
would bring pytest and the web app with it (a second or more of each process's start)."""

from __future__ import annotations

import os

from app.core import crud

EPOCHS = 40


def write_epochs(environment: dict[str, str], lease: crud.Lease) -> None:
    """A worker process: one transaction per epoch, plus progress writes between them."""
    os.environ.update(environment)
    from app.core.db import session_scope  # after the environment: it reads the settings

    for epoch in range(1, EPOCHS + 1):
        with session_scope() as session:
            crud.record_progress(session=session, lease=lease, epoch=epoch, epoch_progress=0.5)
        with session_scope() as session:
            crud.record_epoch(
                session=session, lease=lease, epoch=epoch,
                values={"loss": 1.0 / epoch, "accuracy": epoch / EPOCHS},
            )  # fmt: skip
