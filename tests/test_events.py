"""The live experiment page's event stream against a real database (no broker, no browser):
what each event carries, resuming, and what one tick costs the database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core import crud, db
from app.core.models import Status
from app.core.schemas import EpochMetricPublic
from app.services import accounts
from app.web.routes import events
from tests.support.clients import make_client
from tests.support.factories import CIFAR10_CLASSES, claim, finished_experiment, make_experiment

PROGRESS_KEYS = {
    "current_epoch",
    "total_epochs",
    "epoch_progress",
    "queue_position",
    "phase",
    "detail",
    "remaining",
    "resources",
}


def parse_events(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = fields.get(key, "") + value
        if "event" in fields:
            events.append(fields)
    return events


def parse_chunks(chunks: list[str]) -> list[tuple[str, dict]]:
    return [(e["event"], json.loads(e["data"])) for e in parse_events("".join(chunks))]


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement the web side's engine sends inside the block."""
    sent: list[str] = []

    def record(*args: object) -> None:
        sent.append(str(args[2]))

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_stream_of_finished_experiment_sends_everything_then_ends(
    client: TestClient, session: Session
) -> None:
    experiment = finished_experiment(session)
    with client.stream("GET", f"/experiments/{experiment.id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        sent = parse_events(response.read().decode())
    names = [e["event"] for e in sent]
    assert names == ["experiment", "epoch", "epoch", "diagnostics", "evaluation", "end"]
    assert json.loads(sent[0]["data"])["status"] == "succeeded"
    epochs = [json.loads(e["data"]) for e in sent[1:3]]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert set(epochs[0]) == set(EpochMetricPublic.model_fields)  # the row, nothing more
    assert [e["id"] for e in sent[1:3]] == ["1", "2"]
    diagnostics = json.loads(sent[3]["data"])
    assert set(diagnostics) == {"html"} and 'id="diagnosis"' in diagnostics["html"]
    assert "So far" not in diagnostics["html"]  # the final verdict
    evaluation = json.loads(sent[4]["data"])  # the section itself: the page fetches nothing
    assert set(evaluation) == {"html"}
    assert (
        'id="report"' in evaluation["html"]
        and 'data-chart="confusion-matrix"' in evaluation["html"]
    )
    assert all(name in evaluation["html"] for name in CIFAR10_CLASSES)
    assert json.loads(sent[5]["data"]) == {"status": "succeeded"}


def test_stream_resumes_after_last_event_id(client: TestClient, session: Session) -> None:
    experiment = finished_experiment(session)
    url = f"/experiments/{experiment.id}/events"
    with client.stream("GET", url, headers={"Last-Event-ID": "1"}) as response:
        sent = parse_events(response.read().decode())
    assert [e.get("id") for e in sent if e["event"] == "epoch"] == ["2"]
    with client.stream("GET", url + "?after_epoch=2") as response:
        sent = parse_events(response.read().decode())
    assert [e["event"] for e in sent] == ["experiment", "diagnostics", "evaluation", "end"]


def test_stream_follows_a_running_experiment_to_the_end(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "POLL_SECONDS", 0.05)
    experiment = make_experiment(session)
    lease = claim(session, experiment.id)
    session.commit()
    seen: list[tuple[str, dict]] = []
    with client.stream("GET", f"/experiments/{experiment.id}/events") as response:
        for block in response.iter_text():
            new = parse_chunks([block])
            seen.extend(new)
            names = [name for name, _ in seen]
            if not new:
                continue
            if names == ["experiment"]:  # the worker writes while the page listens
                crud.record_progress(session=session, lease=lease, epoch=1, epoch_progress=0.5)
                session.commit()
            elif names == ["experiment", "progress"]:
                values = {"accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.0, "val_loss": 1.2}
                crud.record_epoch(session=session, lease=lease, epoch=1, values=values)
                session.commit()
            elif names[-1] == "diagnostics":
                crud.end_attempt(session=session, lease=lease, status=Status.cancelled)
                session.commit()
    assert [name for name, _ in seen] == [
        "experiment", "progress", "progress", "epoch", "diagnostics",
        "experiment", "diagnostics", "end",
    ]  # fmt: skip
    progress = seen[1][1]
    assert progress == {"current_epoch": 1, "total_epochs": 2, "epoch_progress": 0.5,
                        "queue_position": None, "phase": "starting",
                        "detail": "0/2 epochs · 25% overall", "remaining": None,
                        "resources": []}  # fmt: skip
    assert seen[2][1]["epoch_progress"] == 1.0  # the epoch's end
    assert "So far" in seen[4][1]["html"]
    assert seen[5][1]["status"] == "cancelled"
    assert "So far" not in seen[6][1]["html"]


@pytest.mark.both_databases
def test_each_tick_is_one_narrow_query_and_diagnostics_reread_nothing(
    session: Session, backend: str
) -> None:
    experiment = make_experiment(session, epochs=10)
    lease = claim(session, experiment.id)
    session.commit()
    state = events.StreamState(last_epoch=0)
    first = events.poll(experiment.id, state)
    assert first is not None and [name for name, _ in parse_chunks(first)] == ["experiment"]
    per_tick: list[int] = []
    for tick in range(1, 7):
        if tick % 2:  # progress within the epoch
            crud.record_progress(session=session, lease=lease, epoch=tick, epoch_progress=0.5)
            expected = ["progress"]
        else:  # the epoch's row
            values = {"accuracy": 0.1 * tick, "val_accuracy": 0.1 * tick, "loss": 1.0}
            crud.record_epoch(session=session, lease=lease, epoch=tick // 2, values=values)
            expected = ["progress", "epoch", "diagnostics"]
        session.commit()
        with statements() as sent:
            chunks = events.poll(experiment.id, state)
        assert chunks is not None
        assert [name for name, _ in parse_chunks(chunks)] == expected
        per_tick.append(len(sent))
        assert "epoch_metrics" in sent[0] and "model_layers" not in sent[0]  # the narrow read
    assert per_tick == [1] * 6
    with statements() as sent:
        assert events.poll(experiment.id, state) == []  # nothing changed: nothing sent
    assert len(sent) == 1
    # The third epoch's diagnostics covered all three epochs from the rows the stream holds.
    assert [row.epoch for row in state.epochs] == [1, 2, 3]


def test_a_queued_experiment_moves_up_by_progress_events(session: Session) -> None:
    first, second = make_experiment(session), make_experiment(session)
    state = events.StreamState(last_epoch=0)
    opening = parse_chunks(events.poll(second.id, state) or [])
    assert opening[0][0] == "experiment" and opening[0][1]["queue_position"] == 2
    claim(session, first.id)
    session.commit()
    with statements() as sent:
        moved = parse_chunks(events.poll(second.id, state) or [])
    assert moved == [("progress", {"current_epoch": 0, "total_epochs": 2, "epoch_progress": 0.0,
                                   "queue_position": 1, "phase": "queued",
                                   "detail": "0/2 epochs · 0% overall", "remaining": None,
                                   "resources": []})]  # fmt: skip
    assert len(sent) == 1
    assert set(moved[0][1]) == PROGRESS_KEYS


def test_stream_of_unknown_experiment_is_json_404(client: TestClient) -> None:
    response = client.get("/experiments/999/events")
    assert response.status_code == 404
    assert "999" in response.json()["detail"]


def test_a_stream_ends_soon_after_its_token_is_revoked(
    data_dir: object, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Access was checked only when the stream opened: a revoked token (or a disabled user)
    kept receiving a running experiment's epochs for as long as it ran."""
    monkeypatch.setattr(events, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(events, "PING_SECONDS", 0.1)  # the loop yields while nothing changes
    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.2)
    user = accounts.create_user(session=session, username="bob", password="a long password",
                                is_admin=False)  # fmt: skip
    token = accounts.create_token(session=session, user=user, name="live", expires_at=None)
    experiment = make_experiment(session)
    claim(session, experiment.id)  # running: the stream would go on until the run ends
    session.commit()
    (token_row,) = accounts.list_tokens(session=session, user=user)
    client = make_client(headers={"Authorization": f"Bearer {token}"})
    chunks = 0
    with client.stream("GET", f"/experiments/{experiment.id}/events") as response:
        assert response.status_code == 200
        for _ in response.iter_text():
            chunks += 1
            if chunks == 3:
                accounts.revoke_token(session=session, token_id=token_row.id)
                session.commit()
                revoked_at = time.monotonic()
            assert chunks < 200, "the stream went on after its token was revoked"
    assert chunks >= 3 and time.monotonic() - revoked_at < 5
    assert client.get(f"/experiments/{experiment.id}/events").status_code == 401
