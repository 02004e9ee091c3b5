"""The sweeps API against a real database and a real Redis (no worker consumes the queue):
launch, refusals that store nothing, list and detail, cancel, retry, and sign-in."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status, Sweep
from app.services import accounts
from tests.support import factories
from tests.support.clients import make_client
from tests.support.factories import claim

QUEUE = "cifarlab"


def sweep_data(**changes: Any) -> dict[str, Any]:
    return factories.sweep_data(**{"seeds": [0, 1], "max_parallel": 3, **changes})


def stored(session: Session) -> tuple[int, int]:
    sweeps = session.scalar(select(func.count()).select_from(Sweep)) or 0
    return sweeps, session.scalar(select(func.count()).select_from(Experiment)) or 0


@pytest.mark.both_databases
def test_post_stores_every_trial_sends_up_to_the_cap_and_reads_back(
    client: TestClient, session: Session, broker: redis.Redis
) -> None:
    response = client.post("/api/sweeps", json=sweep_data())
    assert response.status_code == 201, response.text
    created = response.json()
    ids = created["experiment_ids"]
    assert len(ids) == 4 and created["sent"] == 3 and broker.llen(QUEUE) == 3
    assert created["trial_count"] == 4 and created["counts"] == {"queued": 4}
    trials = crud.sweep_trials(session=session, sweep_id=created["id"])
    assert [t.id for t in trials] == ids
    assert [(t.spec["hyperparameters"]["learning_rate"], t.spec["hyperparameters"]["seed"])
            for t in trials] == [(0.001, 0), (0.001, 1), (0.003, 0), (0.003, 1)]  # fmt: skip

    # One trial runs an epoch and fails: the detail reads it, the list counts it.
    lease = claim(session, ids[0])
    crud.record_epoch(session=session, lease=lease, epoch=1, values={"val_accuracy": 0.4})
    crud.end_attempt(session=session, lease=lease, status=Status.failed, error="boom")
    session.commit()
    detail = client.get(f"/api/sweeps/{created['id']}").json()
    assert detail["spec"]["grid"] == {"learning_rate": [0.001, 0.003]}
    assert detail["varied"] == ["learning_rate"] and detail["metric"] == "val_accuracy"
    assert [t["point"] for t in detail["trials"]] == [
        {"learning_rate": lr, "seed": seed} for lr in (0.001, 0.003) for seed in (0, 1)
    ]
    first = detail["trials"][0]
    assert (first["status"], first["best_metric"], first["error"]) == ("failed", 0.4, "boom")
    assert detail["best"]["id"] == ids[0]
    assert detail["counts"] == {"failed": 1, "queued": 3}
    assert detail["eta_seconds"] is not None

    client.post("/api/sweeps", json=sweep_data(name="second", seeds=1))
    page = client.get("/api/sweeps", params={"limit": 1}).json()
    assert page["total"] == 2
    assert [(s["name"], s["trial_count"], s["counts"]) for s in page["items"]] == [
        ("second", 2, {"queued": 2})
    ]
    older = client.get("/api/sweeps", params={"limit": 1, "offset": 1}).json()["items"]
    assert [(s["id"], s["counts"]) for s in older] == [(created["id"], {"failed": 1, "queued": 3})]


@pytest.mark.usefixtures("broker")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"grid": {"learning_rate": [0.001, 0.003, -1]}}, "grid.learning_rate[2]"),
        ({"grid": {"learnin_rate": [0.1]}}, "grid.learnin_rate"),
        ({"seeds": [1, 1]}, "seeds"),
        ({"model": "resnet9000"}, "model"),
    ],
)
def test_a_bad_sweep_is_a_422_naming_the_field_and_stores_nothing(
    client: TestClient, session: Session, broker: redis.Redis, changes: dict, field: str
) -> None:
    response = client.post("/api/sweeps", json=sweep_data(**changes))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert field in response.json()["detail"]
    assert stored(session) == (0, 0)
    assert broker.llen(QUEUE) == 0


@pytest.mark.usefixtures("broker")
def test_cancel_answers_the_trials_it_stopped_and_retry_queues_them_again(
    client: TestClient, session: Session
) -> None:
    created = client.post("/api/sweeps", json=sweep_data(seeds=[0], max_parallel=1)).json()
    first, second = created["experiment_ids"]
    url = f"/api/sweeps/{created['id']}"
    assert client.post(f"{url}/retry").status_code == 409  # nothing failed yet
    claim(session, first)
    session.commit()
    assert client.post(f"{url}/cancel").json() == {
        "id": created["id"], "experiment_ids": [first, second]
    }  # fmt: skip
    assert client.get(url).json()["counts"] == {"cancelled": 2}
    assert client.post(f"{url}/cancel").json()["experiment_ids"] == []
    assert client.post(f"{url}/retry").json()["experiment_ids"] == [first, second]
    assert client.get(url).json()["counts"] == {"queued": 2}


@pytest.mark.parametrize("path", ["/api/sweeps/99", "/api/sweeps/99/cancel"])
def test_a_missing_sweep_is_a_404_and_an_id_out_of_range_a_422(
    client: TestClient, path: str
) -> None:
    method = client.post if path.endswith("cancel") else client.get
    assert method(path).status_code == 404
    assert method(path.replace("99", str(2**63))).status_code == 422


def test_sweeps_need_a_signed_in_user_and_only_the_owner_may_change_one(
    session: Session, broker: redis.Redis
) -> None:
    alice, bob = (
        accounts.create_user(session=session, username=name, password="p" * 12, is_admin=False)
        for name in ("alice", "bob")
    )
    tokens = {
        user.username: accounts.create_token(session=session, user=user, name="t", expires_at=None)
        for user in (alice, bob)
    }
    session.commit()
    anonymous = make_client()
    assert anonymous.get("/api/sweeps").status_code == 401
    assert anonymous.post("/api/sweeps", json=sweep_data()).status_code == 401
    as_alice = make_client(headers={"Authorization": f"Bearer {tokens['alice']}"})
    created = as_alice.post("/api/sweeps", json=sweep_data()).json()
    assert created["owner_name"] == "alice"
    as_bob = make_client(headers={"Authorization": f"Bearer {tokens['bob']}"})
    assert as_bob.get(f"/api/sweeps/{created['id']}").status_code == 200
    refused = as_bob.post(f"/api/sweeps/{created['id']}/cancel")
    assert refused.status_code == 403 and "sweep" in refused.json()["detail"]
    assert anonymous.post(f"/api/sweeps/{created['id']}/cancel").status_code == 401


def test_openapi_documents_the_sweep_models(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    detail = schema["paths"]["/api/sweeps/{sweep_id}"]["get"]["responses"]["200"]
    assert detail["content"]["application/json"]["schema"]["$ref"].endswith("/SweepPublic")
    models = set(schema["components"]["schemas"])
    assert {"SweepSpec", "TrialPublic", "SweepCreatedPublic"} <= models
