"""Every form route of the app refuses a post without the session's CSRF token, found by
walking the app's routers: a form route added later is checked without a test of its own."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core import crud
from app.services import accounts, outbox
from app.web.auth import UNSAFE_METHODS
from app.web.main import ROUTERS
from tests.support.clients import make_client

PASSWORD = "correct horse battery"
KNOWN_FORMS = {"/experiments/new", "/experiments/import", "/presets/{name}/launch", "/login",
               "/logout"}  # fmt: skip


def form_routes() -> list[tuple[str, str]]:
    """(method, path) of each write outside the JSON API (which takes X-CSRF-Token instead)."""
    return sorted(
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and not route.path.startswith("/api/")
        for method in route.methods & UNSAFE_METHODS
    )


def signed_in_client(session: Session) -> TestClient:
    accounts.create_user(session=session, username="alice", password=PASSWORD, is_admin=False)
    session.commit()
    client = make_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    data = {"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)}
    assert client.post("/login", data=data, follow_redirects=False).status_code == 303
    return client


def test_the_walk_finds_every_known_form() -> None:
    assert KNOWN_FORMS <= {path for _, path in form_routes()}


@pytest.mark.parametrize("token", [None, "forged"])
def test_every_form_route_refuses_a_post_without_the_token(
    session: Session, monkeypatch: pytest.MonkeyPatch, token: str | None
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(outbox, "enqueue_training", sent.append)
    client = signed_in_client(session)
    # Fields any of the forms would take, so a refusal comes from the missing token alone.
    data = {"username": "alice", "password": PASSWORD, "name": "x", "model": "custom_cnn",
            "report_text": "x"}  # fmt: skip
    if token is not None:
        data["csrf_token"] = token
    for method, path in form_routes():
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(method, url, data=data, follow_redirects=False)
        assert response.status_code == 403, (method, path, response.status_code)
        assert "text/html" in response.headers["content-type"], path
    assert crud.list_experiments(session=session)[1] == 0 and sent == []
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
