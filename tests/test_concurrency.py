"""Several writers (worker processes) and readers (web threads) at once: nothing lost, no
"database is locked"."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from tests.support.clients import make_client
from tests.support.epoch_writer import EPOCHS, write_epochs
from tests.support.factories import claim, make_experiment

pytestmark = pytest.mark.both_databases
WRITERS = 4


def test_writers_and_readers_at_once(session: Session, data_dir: Path) -> None:
    ids = [make_experiment(session).id for _ in range(WRITERS)]
    leases = [claim(session, i) for i in ids]
    session.commit()
    environment = {k: v for k, v in os.environ.items() if k.startswith("CIFARLAB_")}
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=write_epochs, args=(environment, lease)) for lease in leases]
    client = make_client()
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for response in (
                client.get("/api/experiments"),
                *(client.get(f"/api/experiments/{i}/metrics") for i in ids),
            ):
                if response.status_code != 200:
                    errors.append(response.text)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for process in writers:
        process.start()
    for thread in readers:
        thread.start()
    for process in writers:
        process.join(timeout=120)
    done.set()
    for thread in readers:
        thread.join()
    assert [process.exitcode for process in writers] == [0] * WRITERS
    assert errors == []
    for experiment_id in ids:
        epochs = client.get(f"/api/experiments/{experiment_id}/metrics").json()["epochs"]
        assert [row["epoch"] for row in epochs] == list(range(1, EPOCHS + 1))
