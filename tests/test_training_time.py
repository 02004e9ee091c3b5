"""Training time is the time inside epochs (``Experiment.training_seconds``), not the wall
clock from start to finish: it is kept by ``crud.record_epoch`` and shown by the experiment
page, the runs list, the compare page and the API; and the compare page's time-to-accuracy
columns, accuracy-against-time chart and test-time augmentation warning."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from tests.support.factories import claim, finished_experiment, make_evaluated, make_experiment
from tests.support.pages import by_id, elements

LABELS = [i % 10 for i in range(100)]
# Validation accuracy 0.82, 0.88, 0.91 after 10, 30 and 60 seconds of training.
EPOCHS = [
    {"accuracy": 0.8, "val_accuracy": 0.82, "loss": 0.6, "val_loss": 0.7, "seconds": 10.0},
    {"accuracy": 0.9, "val_accuracy": 0.88, "loss": 0.4, "val_loss": 0.5, "seconds": 20.0},
    {"accuracy": 0.95, "val_accuracy": 0.91, "loss": 0.2, "val_loss": 0.4, "seconds": 30.0},
]


def facts(html: str) -> dict[str, str]:
    return {e.attrs["data-fact"]: e.text for e in elements(html) if "data-fact" in e.attrs}


def compare_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="compare-data">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))  # type: ignore[no-any-return]


@pytest.mark.both_databases
def test_record_epoch_keeps_training_seconds_the_sum_of_the_epochs(
    session: Session, backend: str
) -> None:
    experiment = make_experiment(session)
    lease = claim(session, experiment.id)
    for epoch, seconds in ((1, 12.5), (2, 7.5)):
        crud.record_epoch(session=session, lease=lease, epoch=epoch, values={"seconds": seconds})
        session.commit()
    session.refresh(experiment)
    assert experiment.training_seconds == 20.0
    # Epoch 2 sent again (a retried write): its row is replaced, and counted once.
    crud.record_epoch(session=session, lease=lease, epoch=2, values={"seconds": 9.0})
    session.commit()
    session.refresh(experiment)
    assert experiment.training_seconds == 21.5


def test_the_page_shows_training_time_not_the_wall_clock_of_a_retried_run(
    client: TestClient, session: Session
) -> None:
    """The issue's case: 150 s from start to finish (queued again after a cancel and retry)
    around 30 s of epochs."""
    experiment = finished_experiment(session)
    assert experiment.finished_at is not None
    experiment.started_at = experiment.finished_at - timedelta(seconds=150)
    session.commit()
    shown = facts(client.get(f"/experiments/{experiment.id}").text)
    assert shown["training_seconds"] == "30s"
    assert shown["wall_clock_seconds"] == "2m 30s"
    listed = {
        e.attrs["data-column"]: e.text
        for e in elements(client.get("/").text)
        if "data-column" in e.attrs
    }
    assert listed["training_seconds"] == "30s"


def test_the_runs_list_sorts_by_training_time(client: TestClient, session: Session) -> None:
    slow = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    fast = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS[:1])
    idle = make_experiment(session)  # no epochs: no training time, listed last either way
    for order, expected in (("asc", [fast, slow, idle]), ("desc", [slow, fast, idle])):
        body = client.get(f"/api/experiments?sort=training_seconds&order={order}").json()
        assert [item["id"] for item in body["items"]] == [e.id for e in expected]
    assert [item["training_seconds"] for item in body["items"]] == [60.0, 10.0, None]
    html = client.get("/?sort=training_seconds&order=asc").text
    rows = [e.attrs["href"] for e in elements(html) if "row-link" in e.attrs.get("class", "")]
    assert rows == [f"/experiments/{e.id}" for e in (fast, slow, idle)]


def test_the_experiment_page_and_api_give_the_time_to_each_accuracy(
    client: TestClient, session: Session
) -> None:
    experiment = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    body = client.get(f"/api/experiments/{experiment.id}").json()
    assert body["training_seconds"] == 60.0
    assert body["time_to_accuracy"] == [
        {"threshold": 0.80, "epoch": 1, "training_seconds": 10.0},
        {"threshold": 0.85, "epoch": 2, "training_seconds": 30.0},
        {"threshold": 0.90, "epoch": 3, "training_seconds": 60.0},
        {"threshold": 0.93, "epoch": None, "training_seconds": None},
    ]
    html = client.get(f"/experiments/{experiment.id}").text
    table = by_id(html, "time-to-accuracy")
    assert table.tag == "table"
    rows = {
        threshold: " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for threshold, row in re.findall(r'<tr data-threshold="([\d.]+)">(.*?)</tr>', html)
    }
    assert rows == {
        "0.8": "80% 1 10s", "0.85": "85% 2 30s", "0.9": "90% 3 1m 00s", "0.93": "93% not reached",
    }  # fmt: skip


def test_compare_summary_gives_training_time_and_time_to_accuracy(
    client: TestClient, session: Session
) -> None:
    a = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    b = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS[:2])
    assert b.finished_at is not None
    b.started_at = b.finished_at - timedelta(hours=1)
    session.commit()
    html = client.get(f"/compare?ids={a.id},{b.id}").text
    summary = html[html.index('id="summary"') : html.index("</table>", html.index('id="summary"'))]
    cells = {
        (experiment_id, column): " ".join(re.sub(r"<[^>]+>", " ", text).split())
        for experiment_id, row in re.findall(
            r'<tr data-experiment="(\d+)">(.*?)</tr>', summary, re.S
        )
        for column, text in re.findall(r'data-column="([\w]+)"[^>]*>(.*?)</td>', row, re.S)
    }
    assert cells[(str(a.id), "training_seconds")] == "1m 00s"
    assert cells[(str(b.id), "training_seconds")] == "30s"  # not the hour it sat idle
    assert cells[(str(a.id), "time_to_90")] == "1m 00s epoch 3"
    assert cells[(str(b.id), "time_to_85")] == "30s epoch 2"
    assert cells[(str(b.id), "time_to_90")] == "—"
    assert "To 93% val" in summary
    compared = client.get(f"/api/compare?ids={a.id},{b.id}").json()
    assert compared["experiments"][1]["time_to_accuracy"][1] == {
        "threshold": 0.85, "epoch": 2, "training_seconds": 30.0,
    }  # fmt: skip


def test_compare_draws_accuracy_against_training_time(client: TestClient, session: Session) -> None:
    a = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS)
    b = make_evaluated(session, LABELS, LABELS, epochs=EPOCHS[:2])
    html = client.get(f"/compare?ids={a.id},{b.id}").text
    assert by_id(html, "time-chart").tag == "div"
    figure = compare_data(html)["figures"]["time-chart"]
    colours = {
        e["id"]: e["color"]
        for e in client.get(f"/api/compare?ids={a.id},{b.id}").json()["experiments"]
    }
    lines = {
        t["meta"]["experiment"]: t for t in figure["data"] if t["meta"]["kind"] == "validation"
    }
    tests = {t["meta"]["experiment"]: t for t in figure["data"] if t["meta"]["kind"] == "test"}
    assert lines[a.id]["x"] == [10 / 60, 30 / 60, 1.0]
    assert lines[a.id]["y"] == [0.82, 0.88, 0.91]
    assert lines[b.id]["x"] == [10 / 60, 30 / 60]
    assert (tests[a.id]["x"], tests[a.id]["y"]) == ([1.0], [1.0])  # test accuracy at the end
    assert lines[a.id]["line"]["color"] == tests[a.id]["marker"]["color"] == colours[a.id]
    assert lines[b.id]["line"]["color"] == colours[b.id] != colours[a.id]
    assert figure["layout"]["title"]["text"] == "Accuracy against training time"


def test_compare_warns_when_test_time_augmentation_differs(
    client: TestClient, session: Session
) -> None:
    plain = make_evaluated(session, LABELS, LABELS)
    flipped = make_evaluated(session, LABELS, LABELS, test_time_augmentation="flip")
    also_plain = make_evaluated(session, LABELS, LABELS)
    for experiment, name in ((plain, "plain"), (flipped, "flipped"), (also_plain, "also plain")):
        crud.update_experiment(session=session, experiment=experiment, changes={"name": name})
    session.commit()
    html = client.get(f"/compare?ids={plain.id},{flipped.id}").text
    warnings = html[html.index('id="warnings"') : html.index("</div>", html.index('id="warnings"'))]
    assert "Different test-time augmentation: plain: none; flipped: flip." in warnings
    assert "flip: each image predicted as the mean with its mirror image;" in warnings
    same = client.get(f"/compare?ids={plain.id},{also_plain.id}").text
    assert "test-time augmentation" not in same


def test_the_experiment_page_names_test_time_augmentation_when_used(
    client: TestClient, session: Session
) -> None:
    flipped: Experiment = make_evaluated(session, LABELS, LABELS, test_time_augmentation="flip")
    plain = make_evaluated(session, LABELS, LABELS)
    html = client.get(f"/experiments/{flipped.id}").text
    note = html[html.index('id="test-time-augmentation"') :]
    said = note[: note.index("</p>")]
    assert "Test-time augmentation: <strong>flip</strong>" in said
    assert "(each image predicted as the mean with its mirror image)" in said
    assert 'id="test-time-augmentation"' not in client.get(f"/experiments/{plain.id}").text
    body = client.get(f"/api/experiments/{flipped.id}/evaluation").json()
    assert body["test_time_augmentation"] == "flip"
