"""`cifarlab bench stream`: what one open experiment page costs while its run trains.

A writer thread plays the worker (progress every ``progress_seconds``, an epoch row every
``epoch_seconds``) through an engine of its own; the page is the real app, served in-process,
and a client that does what ``static/experiment.js`` does: it loads the page, follows its event
stream and fetches whatever fragment URLs the page data names when an event asks for them.
Every statement the web side sends (a SQLAlchemy ``before_cursor_execute`` listener on its
engine) and every byte it answers after the page itself is counted, then scaled to a minute.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.db import get_engine, make_engine
from app.core.schemas import parse_spec
from app.web.main import create_app

PAGE_DATA = re.compile(r'<script type="application/json" id="experiment-data">(.*?)</script>')


@dataclass(frozen=True)
class Options:
    seconds: float
    epoch_seconds: float
    progress_seconds: float


@dataclass
class Counts:
    queries: int = 0
    stream_bytes: int = 0
    fragment_bytes: int = 0
    fragment_requests: int = 0
    events: int = 0
    epochs: int = 0


def _start_run(session: Session, epochs: int) -> crud.Lease:
    """A running custom CNN with its model summary written, as a worker leaves it."""
    spec = {"name": "bench stream", "model": "custom_cnn", "hyperparameters": {"epochs": epochs}}
    experiment = crud.create_experiment(session=session, spec=parse_spec(spec))
    session.commit()
    lease = crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="bench", device="CPU"
    )
    assert lease is not None
    layers = [{"name": f"layer_{i}", "type": "Dense", "parameters": 1000, "trainable": True}
              for i in range(20)]  # fmt: skip
    crud.set_model_info(
        session=session, lease=lease, parameters=20_000, trainable_parameters=20_000,
        layers=layers,
    )  # fmt: skip
    session.commit()
    return lease


def _train(lease: crud.Lease, options: Options, stop: threading.Event) -> None:
    """The worker's writes, on an engine of its own so they are not counted."""
    engine = make_engine(get_settings().sqlalchemy_url)
    started = time.monotonic()
    epoch = 1
    with Session(engine) as session:
        while not stop.wait(options.progress_seconds):
            elapsed = time.monotonic() - started
            if elapsed >= epoch * options.epoch_seconds:
                values = {"accuracy": 0.3 + 0.01 * epoch, "val_accuracy": 0.28 + 0.01 * epoch,
                          "loss": 2.0 - 0.02 * epoch, "val_loss": 2.1 - 0.02 * epoch,
                          "learning_rate": 1e-3, "seconds": options.epoch_seconds,
                          "images_per_second": 400.0}  # fmt: skip
                crud.record_epoch(session=session, lease=lease, epoch=epoch, values=values)
                epoch += 1
            fraction = (elapsed % options.epoch_seconds) / options.epoch_seconds
            crud.record_progress(session=session, lease=lease, epoch=epoch, epoch_progress=fraction)
            session.commit()
    engine.dispose()


def _follow(client: TestClient, page: dict[str, Any], counts: Counts, deadline: float) -> None:
    """experiment.js's network use: the stream, plus each fragment its page data names."""

    def fetch(url: str | None) -> None:
        if url:
            response = client.get(url, headers={"Accept": "text/html"})
            counts.fragment_requests += 1
            counts.fragment_bytes += len(response.content)

    with client.stream("GET", page["eventsUrl"]) as response:
        for line in response.iter_lines():
            counts.stream_bytes += len(line.encode()) + 1
            if line.startswith("event: "):
                counts.events += 1
                name = line.removeprefix("event: ")
                if name == "epoch":
                    counts.epochs += 1
                    fetch(page.get("diagnosticsUrl"))
                elif name == "evaluation":
                    fetch(page.get("evaluationUrl"))
            if time.monotonic() >= deadline:
                return


def run(options: Options) -> dict[str, Any]:
    """Figures per minute of one open page; the database is the one configured (a scratch
    one under `cifarlab bench`)."""
    from app.core.db import get_sessionmaker

    epochs = int(options.seconds / options.epoch_seconds) + 10  # still running at the end
    with get_sessionmaker()() as session:
        lease = _start_run(session, epochs)
    counts = Counts()

    def count(*_: Any) -> None:
        counts.queries += 1

    stop = threading.Event()
    writer = threading.Thread(target=_train, args=(lease, options, stop), daemon=True)
    client = TestClient(create_app())  # not entered: no reaper thread adding its own reads
    try:
        html = client.get(f"/experiments/{lease.experiment_id}").text
        match = PAGE_DATA.search(html)
        assert match is not None, "the experiment page carries its page data"
        page = json.loads(match.group(1))
        writer.start()
        event.listen(get_engine(), "before_cursor_execute", count)
        started = time.monotonic()
        try:
            _follow(client, page, counts, started + options.seconds)
        finally:
            elapsed = time.monotonic() - started
            event.remove(get_engine(), "before_cursor_execute", count)
            stop.set()
            writer.join()
    finally:
        client.close()
    per_minute = 60.0 / elapsed
    return {
        "seconds": round(elapsed, 1),
        "epochs_seen": counts.epochs,
        "events": counts.events,
        "queries": counts.queries,
        "queries_per_minute": round(counts.queries * per_minute),
        "stream_bytes_per_minute": round(counts.stream_bytes * per_minute),
        "fragment_requests_per_minute": round(counts.fragment_requests * per_minute),
        "fragment_bytes_per_minute": round(counts.fragment_bytes * per_minute),
        "bytes_per_minute": round((counts.stream_bytes + counts.fragment_bytes) * per_minute),
    }
