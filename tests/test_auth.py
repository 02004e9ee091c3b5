"""Accounts, tokens, sessions, ownership, CSRF and exposure, through the real app."""

from __future__ import annotations

import re

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.cli.services import check_exposure
from app.services import accounts
from tests.support.clients import make_client
from tests.support.factories import spec_data
from tests.support.settings import clear_caches

pytestmark = pytest.mark.both_databases
PASSWORD = "correct horse battery"


@pytest.fixture
def team(session: Session, broker: redis.Redis) -> dict[str, str]:
    """alice and bob (users) and root (admin), each with an API token."""
    tokens = {}
    for name, admin in (("alice", False), ("bob", False), ("root", True)):
        user = accounts.create_user(session=session, username=name, password=PASSWORD,
                                    is_admin=admin)  # fmt: skip
        tokens[name] = accounts.create_token(
            session=session, user=user, name="test", expires_at=None
        )
    session.commit()
    return tokens


def as_user(token: str) -> TestClient:
    return make_client(headers={"Authorization": f"Bearer {token}"})


def test_without_accounts_cifarlab_runs_open(session: Session, broker: redis.Redis) -> None:
    client = make_client()
    created = client.post("/api/experiments", json=spec_data())
    assert created.status_code == 201 and created.json()["owner_name"] is None
    assert client.post(f"/api/experiments/{created.json()['id']}/cancel").status_code == 200


def test_once_accounts_exist_everything_needs_sign_in(team: dict[str, str]) -> None:
    anonymous = make_client()
    for method, path in (("get", "/api/experiments"), ("get", "/api/compare?ids=1,2"),
                         ("post", "/api/experiments"), ("get", "/api/workers")):  # fmt: skip
        response = getattr(anonymous, method)(path)
        assert response.status_code == 401, path
        assert "sign in" in response.json()["detail"]
    assert anonymous.get("/api/health").status_code == 200
    forged = as_user("cl_not-a-real-token")
    assert forged.get("/api/experiments").status_code == 401


def test_owner_or_admin_only_may_change_an_experiment(team: dict[str, str]) -> None:
    alice, bob, root = (as_user(team[name]) for name in ("alice", "bob", "root"))
    created = alice.post("/api/experiments", json=spec_data())
    experiment_id = created.json()["id"]
    assert created.json()["owner_name"] == "alice"
    assert bob.get(f"/api/experiments/{experiment_id}").status_code == 200  # all may read
    for method, suffix, body in (("post", "/cancel", None), ("patch", "", {"notes": "x"}),
                                 ("delete", "", None), ("post", "/retry", None)):  # fmt: skip
        response = bob.request(method, f"/api/experiments/{experiment_id}{suffix}", json=body)
        assert response.status_code == 403, suffix
        assert "only the owner" in response.json()["detail"]
    assert root.patch(f"/api/experiments/{experiment_id}", json={"notes": "ok"}).status_code == 200
    assert alice.post(f"/api/experiments/{experiment_id}/cancel").status_code == 200
    mine = bob.get("/api/experiments", params={"owner": "me"}).json()
    assert mine["total"] == 0
    assert alice.get("/api/experiments", params={"owner": "me"}).json()["total"] == 1


def login(client: TestClient, username: str, password: str) -> int:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )
    return response.status_code


def test_browser_session_needs_csrf_for_api_writes(team: dict[str, str]) -> None:
    client = make_client()
    assert login(client, "alice", "wrong password") == 401
    assert login(client, "alice", PASSWORD) == 303
    assert client.get("/api/experiments").status_code == 200  # the cookie signs in
    refused = client.post("/api/experiments", json=spec_data())
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["detail"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    accepted = client.post("/api/experiments", json=spec_data(), headers={"X-CSRF-Token": token})
    assert accepted.status_code == 201 and accepted.json()["owner_name"] == "alice"


def test_login_form_without_csrf_token_is_refused(team: dict[str, str]) -> None:
    client = make_client()
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/api/experiments").status_code == 401


def test_cross_site_writes_are_refused_even_when_open(session: Session, broker) -> None:
    client = make_client()
    response = client.post(
        "/api/experiments", json=spec_data(), headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403 and "cross-site" in response.json()["detail"]
    assert client.get("/api/experiments").json()["total"] == 0
    same = client.post("/api/experiments", json=spec_data(), headers={"Origin": "http://127.0.0.1"})
    assert same.status_code == 201


def test_an_open_cifarlab_answers_only_to_loopback_names(
    session: Session, broker: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a page at rebind.example points its name at 127.0.0.1, and the browser
    sends that name as Host and as Origin, so the cross-site guard sees the same origin."""
    rebound = "rebind.example:8000"
    forged = {"Host": rebound, "Origin": f"http://{rebound}"}
    client = make_client()
    read = client.get("/api/experiments", headers=forged)
    assert read.status_code == 403 and "loopback" in read.json()["detail"]
    assert client.post("/api/experiments", json=spec_data(), headers=forged).status_code == 403
    assert client.get("/", headers=forged).status_code == 403
    assert client.get("/api/experiments").json()["total"] == 0  # nothing was launched
    for host in ("localhost:8000", "127.0.0.2", "[::1]:8000", "cifarlab.localhost"):
        assert client.get("/api/experiments", headers={"Host": host}).status_code == 200, host

    monkeypatch.setenv("CIFARLAB_AUTH", "disabled")  # open on purpose: the user's choice
    clear_caches()
    assert make_client().get("/api/experiments", headers=forged).status_code == 200
    monkeypatch.delenv("CIFARLAB_AUTH")
    clear_caches()
    accounts.create_user(session=session, username="admin", password=PASSWORD, is_admin=True)
    session.commit()  # with accounts, a rebound page holds no session: sign-in decides
    assert make_client().get("/api/experiments", headers=forged).status_code == 401


def test_passwords_are_hashed_and_tokens_kept_only_as_hashes(
    session: Session, team: dict[str, str]
) -> None:
    from app.core.models import ApiToken

    alice = accounts.get_user(session=session, username="alice")
    assert alice.password_hash.startswith("$argon2") and PASSWORD not in alice.password_hash
    stored = [row.token_hash for row in session.query(ApiToken)]
    assert team["alice"] not in stored and len(stored[0]) == 64
    with pytest.raises(ValueError, match="at least 8"):
        accounts.create_user(session=session, username="carol", password="short", is_admin=False)
    with pytest.raises(ValueError, match="taken"):
        accounts.create_user(session=session, username="alice", password=PASSWORD, is_admin=False)


def test_listening_beyond_loopback_needs_accounts(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.config import get_settings

    check_exposure("127.0.0.1")
    with pytest.raises(ValueError, match="cifarlab user create"):
        check_exposure("0.0.0.0")
    monkeypatch.setenv("CIFARLAB_AUTH", "disabled")
    get_settings.cache_clear()
    check_exposure("0.0.0.0")
    monkeypatch.delenv("CIFARLAB_AUTH")
    get_settings.cache_clear()
    accounts.create_user(session=session, username="admin", password=PASSWORD, is_admin=True)
    session.commit()
    check_exposure("0.0.0.0")
