"""Lost workers: silent running experiments are requeued, then failed; live ones are left alone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import Experiment, Status, utcnow
from app.services.reaper import reap_lost
from tests.support.clients import make_client
from tests.support.factories import end_experiment, make_experiment

pytestmark = pytest.mark.both_databases


def running(session: Session, *, silent_seconds: float, attempts: int) -> int:
    experiment = make_experiment(session)
    crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="gone (pid 1)", device="CPU",
        worker_name="w1@host",
    )  # fmt: skip
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id)
        .values(heartbeat_at=utcnow() - timedelta(seconds=silent_seconds), attempts=attempts)
    )
    session.commit()
    return experiment.id


def test_silent_run_is_requeued_then_failed(session: Session, broker: redis.Redis) -> None:
    timeout = get_settings().heartbeat_timeout_seconds
    first_try = running(session, silent_seconds=timeout + 5, attempts=1)
    last_try = running(session, silent_seconds=timeout + 5, attempts=get_settings().max_attempts)
    alive = running(session, silent_seconds=1, attempts=1)
    assert reap_lost(get_settings()) == {first_try: "requeued", last_try: "failed"}
    session.expire_all()
    assert crud.get_experiment(session=session, experiment_id=first_try).status == Status.queued
    assert broker.llen("cifarlab") == 1
    failed = crud.get_experiment(session=session, experiment_id=last_try)
    assert failed.status == Status.failed and "Worker lost" in failed.error
    assert "gone (pid 1)" in failed.error and "Retry resumes" in failed.error
    assert crud.get_experiment(session=session, experiment_id=alive).status == Status.running
    assert reap_lost(get_settings()) == {}  # nothing twice


def test_retry_requeues_failed_and_refuses_running(session: Session, broker: redis.Redis) -> None:
    client = make_client()
    failed = running(session, silent_seconds=0, attempts=2)
    end_experiment(session, failed, Status.failed, error="x")
    session.commit()
    response = client.post(f"/api/experiments/{failed}/retry")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["error"]) == ("queued", None)
    assert broker.llen("cifarlab") == 1
    busy = running(session, silent_seconds=0, attempts=1)
    refused = client.post(f"/api/experiments/{busy}/retry")
    assert refused.status_code == 409 and "only failed or cancelled" in refused.json()["detail"]


def test_workers_list_shows_device_and_running_experiment(
    session: Session, broker: redis.Redis
) -> None:
    client = make_client()
    crud.see_worker(session=session, name="w1@host", hostname="host", pid=7, device="CPU (2 cores)")
    crud.see_worker(session=session, name="w2@host", hostname="host", pid=8, device="GPU 0: H200")
    session.commit()
    experiment_id = running(session, silent_seconds=0, attempts=1)
    workers = {w["name"]: w for w in client.get("/api/workers").json()}
    assert workers["w1@host"]["running"]["id"] == experiment_id
    assert workers["w2@host"]["running"] is None
    assert workers["w2@host"]["device"] == "GPU 0: H200"
    crud.forget_worker(session=session, name="w2@host")
    session.commit()
    assert [w["name"] for w in client.get("/api/workers").json()] == ["w1@host"]


def test_queue_position_counts_who_is_ahead(session: Session, broker: redis.Redis) -> None:
    client = make_client()
    ids = [make_experiment(session).id for _ in range(3)]
    positions = [client.get(f"/api/experiments/{i}").json()["queue_position"] for i in ids]
    assert positions == [1, 2, 3]
    client.post(f"/api/experiments/{ids[0]}/cancel")
    assert client.get(f"/api/experiments/{ids[2]}").json()["queue_position"] == 2
    assert client.get(f"/api/experiments/{ids[0]}").json()["queue_position"] is None


@pytest.mark.parametrize("gpus", ["", "a,b", "0,0"])
def test_bad_gpu_list_is_refused(gpus: str) -> None:
    from app.cli.services import parse_gpus

    with pytest.raises(ValueError, match="--gpus"):
        parse_gpus(gpus)
