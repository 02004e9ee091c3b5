"""Per-user limits: experiments queued or running, and open live streams, answered 429."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import LiveStream, utcnow
from app.services import accounts, quotas
from tests.support.clients import make_client
from tests.support.factories import failed_experiment, make_experiment, spec_data
from tests.support.settings import clear_caches

pytestmark = pytest.mark.both_databases


@pytest.fixture
def limits(broker: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER", "2")
    monkeypatch.setenv("CIFARLAB_MAX_LIVE_STREAMS_PER_USER", "2")
    clear_caches()


def bearer(session: Session, username: str) -> dict[str, str]:
    user = accounts.create_user(
        session=session, username=username, password="long password 1", is_admin=False
    )
    token = accounts.create_token(session=session, user=user, name="test", expires_at=None)
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_a_user_at_the_experiment_limit_gets_429_naming_the_setting(
    limits: None, session: Session
) -> None:
    alice, bob = bearer(session, "alice"), bearer(session, "bob")
    client = make_client()
    ids = [client.post("/api/experiments", json=spec_data(), headers=alice).json()["id"]
           for _ in range(2)]  # fmt: skip
    refused = client.post("/api/experiments", json=spec_data(), headers=alice)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER=2" in refused.json()["detail"]
    assert crud.list_experiments(session=session)[1] == 2  # nothing stored
    assert client.post("/api/experiments", json=spec_data(), headers=bob).status_code == 201
    client.post(f"/api/experiments/{ids[0]}/cancel", headers=alice)
    assert client.post("/api/experiments", json=spec_data(), headers=alice).status_code == 201
    # A retry queues one again, so it counts too.
    assert client.post(f"/api/experiments/{ids[0]}/retry", headers=alice).status_code == 429


def test_the_launch_form_shows_the_limit(limits: None, session: Session) -> None:
    from tests.support.pages import form, post_form

    for _ in range(2):
        make_experiment(session)
    response = post_form(make_client(), "/experiments/new", form())
    assert response.status_code == 429
    assert "CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER" in response.text


def open_streams(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(LiveStream)) or 0)


def test_live_streams_over_the_limit_get_429_and_a_closed_one_frees_its_place(
    limits: None, session: Session
) -> None:
    client = make_client()
    finished = failed_experiment(session)
    # A finished run's stream ends by itself, and gives its place back.
    response = client.get(f"/experiments/{finished.id}/events")
    assert response.status_code == 200 and "event: end" in response.text
    assert open_streams(session) == 0
    held = [quotas.open_stream(session, "anonymous") for _ in range(2)]  # two pages open
    refused = client.get(f"/experiments/{finished.id}/events")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "CIFARLAB_MAX_LIVE_STREAMS_PER_USER=2" in refused.json()["detail"]
    quotas.close_stream(session, held[0])
    assert client.get(f"/experiments/{finished.id}/events").status_code == 200
    assert open_streams(session) == 1


def test_streams_of_a_process_that_died_run_out(limits: None, session: Session) -> None:
    for _ in range(2):
        stream_id = quotas.open_stream(session, "user:1")
        stale = utcnow() - timedelta(seconds=1)
        session.get(LiveStream, stream_id).expires_at = stale  # type: ignore[union-attr]
        session.commit()
    assert quotas.open_stream(session, "user:1")
    assert open_streams(session) == 1
