"""A warm start's source, checked where the worker would otherwise fail after the queue: a
launch or any trial of a sweep naming a source without a trained model, of another model or
trained at another image size is a 422 that stores nothing; a source that a queued or
running run warm-starts from cannot be deleted (409) until that run has finished."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.models import Experiment, Status, Sweep
from tests.support.factories import claim, end_experiment, make_experiment, spec_data

pytestmark = [pytest.mark.usefixtures("broker")]

QUEUE = "cifarlab"
BASE = {"epochs": 1, "train_size": 100, "test_size": 50}


def succeeded(session: Session, **hyperparameters: Any) -> int:
    """A run as a worker leaves one that succeeded: a source a warm start may name."""
    experiment_id = make_experiment(session, **hyperparameters).id
    end_experiment(session, experiment_id, Status.succeeded)
    session.commit()
    return experiment_id


def stored(session: Session) -> tuple[int, int]:
    session.expire_all()
    sweeps = session.scalar(select(func.count()).select_from(Sweep)) or 0
    return sweeps, session.scalar(select(func.count()).select_from(Experiment)) or 0


def errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def sweep(**changes: Any) -> dict[str, Any]:
    return {"name": "warm", "model": "custom_cnn", "hyperparameters": BASE, **changes}


def test_a_launch_at_another_image_size_than_its_source_is_refused(
    client: TestClient, session: Session, broker: redis.Redis
) -> None:
    source = succeeded(session)  # trained at the default 32 px
    before = stored(session)
    response = client.post(
        "/api/experiments", json=spec_data(image_size=64, warm_start_experiment_id=source)
    )
    assert errors(response) == {
        "hyperparameters.warm_start_experiment_id": f"experiment {source} trained at image_size "
        "32, not 64; warm starts keep the input size"
    }
    assert stored(session) == before and broker.llen(QUEUE) == 0
    same_size = client.post("/api/experiments", json=spec_data(warm_start_experiment_id=source))
    assert same_size.status_code == 201, same_size.text


@pytest.mark.both_databases
def test_every_trials_warm_start_is_checked_and_named_by_its_axis(
    client: TestClient, session: Session, broker: redis.Redis
) -> None:
    source = succeeded(session)
    before = stored(session)
    response = client.post(
        "/api/sweeps", json=sweep(grid={"warm_start_experiment_id": [source, 99999]})
    )
    assert errors(response) == {
        "grid.warm_start_experiment_id[1]": "experiment 99999 has no trained model to start "
        "from; pick one that succeeded"
    }
    assert "grid.warm_start_experiment_id[1]" in response.json()["detail"]
    assert stored(session) == before and broker.llen(QUEUE) == 0

    drawn = sweep(
        random={"warm_start_experiment_id": {"distribution": "choice", "values": [99999]}},
        trials=1,
    )
    assert errors(client.post("/api/sweeps", json=drawn)) == {
        "random.warm_start_experiment_id": "experiment 99999 has no trained model to start "
        "from; pick one that succeeded"
    }
    assert stored(session) == before and broker.llen(QUEUE) == 0

    good = client.post("/api/sweeps", json=sweep(grid={"warm_start_experiment_id": [source]}))
    assert good.status_code == 201, good.text


def test_a_base_warm_start_is_named_by_its_base_field_or_by_the_varied_image_size(
    client: TestClient, session: Session, broker: redis.Redis
) -> None:
    source, other_model = succeeded(session), succeeded(session)
    session.execute(update(Experiment).where(Experiment.id == other_model).values(model="fast_cnn"))
    session.commit()
    before = stored(session)
    base = {**BASE, "warm_start_experiment_id": other_model}
    refused = client.post("/api/sweeps", json=sweep(hyperparameters=base, seeds=2))
    assert errors(refused) == {
        "hyperparameters.warm_start_experiment_id": f"experiment {other_model} trained "
        "fast_cnn, not custom_cnn"
    }

    base = {**BASE, "warm_start_experiment_id": source}
    sizes = client.post("/api/sweeps", json=sweep(hyperparameters=base,
                                                  grid={"image_size": [32, 48]}))  # fmt: skip
    assert errors(sizes) == {
        "grid.image_size[1]": f"experiment {source} trained at image_size 32, not 48; warm "
        "starts keep the input size"
    }
    assert stored(session) == before and broker.llen(QUEUE) == 0


@pytest.mark.both_databases
def test_a_source_cannot_be_deleted_while_a_run_warm_starts_from_it(
    client: TestClient, session: Session
) -> None:
    source = succeeded(session)
    launched = client.post("/api/experiments", json=spec_data(warm_start_experiment_id=source))
    dependent = launched.json()["id"]

    refused = client.delete(f"/api/experiments/{source}")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"experiment {source} is still needed: experiment {dependent} (queued) warm-starts "
        "from it; cancel or delete it first"
    )
    bulk = client.post("/api/experiments/bulk", json={"ids": [source], "action": "delete"})
    assert bulk.status_code == 200, bulk.text
    [result] = bulk.json()["results"]
    assert (result["outcome"], result["detail"]) == ("conflict", refused.json()["detail"])

    claim(session, dependent)
    session.commit()
    running = client.delete(f"/api/experiments/{source}")
    assert running.status_code == 409 and f"{dependent} (running)" in running.json()["detail"]
    assert client.get(f"/api/experiments/{source}").status_code == 200

    end_experiment(session, dependent, Status.failed)  # finished: it needs the file no more
    session.commit()
    assert client.delete(f"/api/experiments/{source}").status_code == 204
    assert client.get(f"/api/experiments/{source}").status_code == 404


@pytest.mark.both_databases
def test_a_refusal_names_a_few_dependents_and_counts_the_rest(
    client: TestClient, session: Session
) -> None:
    source = succeeded(session)
    grid = {"learning_rate": [0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007]}
    base = {**BASE, "warm_start_experiment_id": source}
    launched = client.post("/api/sweeps", json=sweep(hyperparameters=base, grid=grid))
    ids = launched.json()["experiment_ids"]
    refused = client.delete(f"/api/experiments/{source}")
    assert refused.status_code == 409
    named = ", ".join(f"{i} (queued)" for i in ids[:5])
    assert refused.json()["detail"] == (
        f"experiment {source} is still needed: experiments {named} and 2 more warm-start "
        "from it; cancel or delete them first"
    )
