"""A pruned trial shows as pruned wherever statuses show: its badge, why it stopped, the
actions it allows, the list's status filter and the API."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.core.sweeps import expand, parse_sweep
from tests.support.factories import claim, make_experiment
from tests.support.pages import by_id, elements

REASON = (
    "pruned at epoch 1 because val_accuracy 0.12 is below the median 0.97 of 1 other trial "
    "at that epoch"
)


def pruned_trial(session: Session) -> Experiment:
    spec = parse_sweep({"name": "sweep", "model": "custom_cnn", "seeds": 1})
    _, (trial,) = crud.create_sweep(session=session, spec=spec, trials=expand(spec), owner_id=None)
    session.commit()
    lease = claim(session, trial.id)
    crud.record_epoch(session=session, lease=lease, epoch=1, values={"val_accuracy": 0.12})
    assert crud.end_pruned(session=session, lease=lease, reason=REASON)
    session.commit()
    return trial


def test_a_pruned_trial_shows_its_badge_its_reason_and_only_delete(
    client: TestClient, session: Session
) -> None:
    trial = pruned_trial(session)
    html = client.get(f"/experiments/{trial.id}").text
    badge = by_id(html, "status")
    assert badge.attrs["class"] == "badge badge-pruned" and badge.text == "pruned"
    assert "hidden" not in by_id(html, "stop-reason-row").attrs
    assert next(e for e in elements(html) if e.attrs.get("data-fact") == "stop_reason").text == (
        REASON
    )
    shown = {
        name
        for name in ("cancel", "retry", "delete", "download")
        if f'id="{name}"' in html and "hidden" not in by_id(html, name).attrs
    }
    assert shown == {"delete"}
    assert ".badge-pruned" in client.get("/static/app.css").text
    assert client.get(f"/api/experiments/{trial.id}").json()["stop_reason"] == REASON


def test_a_run_that_was_not_pruned_shows_no_reason(client: TestClient, session: Session) -> None:
    experiment = make_experiment(session)
    assert (
        "hidden" in by_id(client.get(f"/experiments/{experiment.id}").text, "stop-reason-row").attrs
    )
    assert client.get(f"/api/experiments/{experiment.id}").json()["stop_reason"] is None


def test_the_list_filters_on_pruned(client: TestClient, session: Session) -> None:
    trial = pruned_trial(session)
    other = make_experiment(session)
    html = client.get("/").text
    options = [e.attrs.get("value") for e in elements(html) if e.tag == "option"]
    assert "pruned" in options
    listed = client.get("/?status=pruned").text
    assert f'href="/experiments/{trial.id}"' in listed and "badge-pruned" in listed
    assert f'href="/experiments/{other.id}"' not in listed
    assert [
        item["id"] for item in client.get("/api/experiments?status=pruned").json()["items"]
    ] == [trial.id]
