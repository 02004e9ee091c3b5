"""A stalled broker: quick 503s, launches kept and sent once it is back, and idempotent
launches. A real redis-server of its own, which tests stop with SIGSTOP and resume."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment, Status, utcnow
from app.embedded_redis import free_port, redis_url, start_redis
from app.services import outbox
from tests.support.clients import make_client
from tests.support.factories import failed_experiment, make_experiment, spec_data
from tests.support.settings import clear_caches

pytestmark = pytest.mark.both_databases

QUEUE = "cifarlab"
QUICK_SECONDS = 3.0  # the web gives up on Redis after 1 s (broker_timeout_seconds)


class Stallable:
    def __init__(self, process: subprocess.Popen[bytes], url: str) -> None:
        self.process, self.url = process, url

    def stop(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def stallable_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stallable]:
    directory, port = tmp_path_factory.mktemp("stallable-redis"), free_port()
    process = start_redis(directory, port)
    yield Stallable(process, redis_url(directory, port))
    os.kill(process.pid, signal.SIGCONT)
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def stallable(
    stallable_server: Stallable, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Stallable]:
    """Settings pointed at the server, emptied; it runs again after each test, whatever."""
    monkeypatch.setenv("CIFARLAB_REDIS_URL", stallable_server.url)
    clear_caches()
    redis.Redis.from_url(stallable_server.url).flushdb()
    try:
        yield stallable_server
    finally:
        stallable_server.resume()


def queued_ids(url: str) -> list[int]:
    raw = redis.Redis.from_url(url).lrange(QUEUE, 0, -1)
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in raw]


def timed(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    """Its answer and how long it took; a call still hanging after twice the bound fails the
    test instead of hanging it (the stopped broker resumes in teardown, releasing it)."""
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        response = pool.submit(action).result(timeout=2 * QUICK_SECONDS)
    finally:
        pool.shutdown(wait=False)
    return response, time.monotonic() - started


def test_health_answers_quickly_with_the_broker_stopped(stallable: Stallable) -> None:
    client = make_client()
    stallable.stop()
    response, seconds = timed(lambda: client.get("/api/health"))
    assert seconds < QUICK_SECONDS
    health = response.json()
    assert (health["status"], health["database"]) == ("degraded", "ok")
    assert health["broker"] == "error"  # the detail is for admins (test_api.test_13_...)


def test_launch_with_the_broker_stopped_is_a_quick_503_and_is_sent_once_back(
    stallable: Stallable, session: Session
) -> None:
    client = make_client()
    stallable.stop()
    response, seconds = timed(lambda: client.post("/api/experiments", json=spec_data()))
    assert seconds < QUICK_SECONDS
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    body = response.json()
    assert "stored and queued" in body["detail"] and "Idempotency-Key" in body["detail"]
    stored = crud.get_experiment(session=session, experiment_id=body["experiment_id"])
    assert stored is not None
    assert (stored.status, stored.enqueued_at) == (Status.queued, None)
    assert outbox.send_pending() == []  # still stopped: it stays in the outbox
    stallable.resume()
    assert outbox.send_pending() == [body["experiment_id"]]
    assert outbox.send_pending() == []  # sent once, not on every pass
    # A send that timed out may still land when Redis resumes; the worker's claim ignores it.
    assert set(queued_ids(stallable.url)) == {body["experiment_id"]}
    session.expire_all()
    assert client.get(f"/api/experiments/{body['experiment_id']}").json()["status"] == "queued"


def test_a_send_under_way_elsewhere_is_not_sent_again_until_its_lease_runs_out(
    stallable: Stallable, session: Session
) -> None:
    """Another web process claimed it (and may be sending it now): this one leaves it."""
    experiment = make_experiment(session)
    assert crud.claim_send(session=session, experiment_id=experiment.id, claimed_before=utcnow())
    session.commit()
    assert outbox.send_pending() == [] and queued_ids(stallable.url) == []
    expired = utcnow() - timedelta(seconds=outbox.SEND_LEASE_SECONDS + 1)
    session.execute(
        update(Experiment).where(Experiment.id == experiment.id).values(enqueue_claimed_at=expired)
    )
    session.commit()  # that process died mid-send
    assert outbox.send_pending() == [experiment.id]
    assert queued_ids(stallable.url) == [experiment.id]


def test_retry_with_the_broker_stopped_keeps_it_queued_and_sends_it_later(
    stallable: Stallable, session: Session
) -> None:
    experiment = failed_experiment(session)
    stallable.stop()
    response = make_client().post(f"/api/experiments/{experiment.id}/retry")
    assert response.status_code == 503
    session.expire_all()
    assert crud.get_experiment(session=session, experiment_id=experiment.id).status == "queued"
    stallable.resume()
    assert outbox.send_pending() == [experiment.id]


def test_every_route_that_launches_answers_503_with_the_broker_stopped_and_documents_it(
    stallable: Stallable, session: Session
) -> None:
    """The preset launch answered the launch service's 503 without documenting it
    (schemathesis: "undocumented status code")."""
    failed = failed_experiment(session)
    client = make_client()
    paths = client.get("/openapi.json").json()["paths"]
    stallable.stop()
    launches = (
        ("/api/experiments", "/api/experiments", spec_data()),
        ("/api/presets/quick-custom-cnn/launch", "/api/presets/{name}/launch", None),
        (f"/api/experiments/{failed.id}/retry", "/api/experiments/{experiment_id}/retry", None),
    )
    for path, template, body in launches:
        response = client.post(path, json=body)
        assert response.status_code == 503, (path, response.text)
        assert "503" in paths[template]["post"]["responses"], template


def test_the_same_idempotency_key_launches_once(stallable: Stallable, session: Session) -> None:
    client = make_client()
    headers = {"Idempotency-Key": "launch-1"}
    first = client.post("/api/experiments", json=spec_data(), headers=headers)
    again = client.post("/api/experiments", json=spec_data(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert crud.list_experiments(session=session)[1] == 1
    assert queued_ids(stallable.url) == [first.json()["id"]]
    other = client.post("/api/experiments", json=spec_data(), headers={"Idempotency-Key": "2"})
    assert other.json()["id"] != first.json()["id"]


def test_the_same_key_with_another_body_is_refused(stallable: Stallable, session: Session) -> None:
    client = make_client()
    headers = {"Idempotency-Key": "launch-1"}
    assert client.post("/api/experiments", json=spec_data(), headers=headers).status_code == 201
    response = client.post("/api/experiments", json=spec_data(epochs=5), headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert "different body" in response.json()["detail"]
    too_long = client.post(
        "/api/experiments", json=spec_data(), headers={"Idempotency-Key": "k" * 201}
    )
    assert too_long.status_code == 422 and "Idempotency-Key" in too_long.json()["detail"]
    assert crud.list_experiments(session=session)[1] == 1


def test_a_retried_launch_after_a_503_finds_the_stored_experiment(
    stallable: Stallable, session: Session
) -> None:
    """The client's retry with its key: one experiment, sent once the broker is back."""
    client = make_client()
    headers = {"Idempotency-Key": "retried"}
    stallable.stop()
    first = client.post("/api/experiments", json=spec_data(), headers=headers)
    assert first.status_code == 503
    again = client.post("/api/experiments", json=spec_data(), headers=headers)
    assert (
        again.status_code == 503 and again.json()["experiment_id"] == first.json()["experiment_id"]
    )
    stallable.resume()
    done = client.post("/api/experiments", json=spec_data(), headers=headers)
    assert (done.status_code, done.json()["id"]) == (201, first.json()["experiment_id"])
    assert crud.list_experiments(session=session)[1] == 1
    assert set(queued_ids(stallable.url)) == {done.json()["id"]}
