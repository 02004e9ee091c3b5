"""In-process clients of the web app: anonymous, signed in with a password, or holding an
API token. Each builds the app afresh, so it sees the settings the test set before."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.web.main import create_app

PASSWORD = "correct horse battery"
LOCAL_URL = "http://127.0.0.1"
"""Where the clients send requests: an open cifarlab (no accounts) answers only to loopback
names, as a browser on the same machine reaches it."""


def make_client(**options: Any) -> TestClient:
    """A client of a newly built app; ``options`` go to ``TestClient`` (headers, cookies)."""
    return TestClient(create_app(), **{"base_url": LOCAL_URL, **options})


def login_token(client: TestClient, url: str = "/login") -> str:
    """The CSRF token of the sign-in form (or of the form at ``url``)."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert match, f"no CSRF token in the form at {url}"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    """Post the sign-in form as a browser does; not following the redirect."""
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": login_token(client)},
        follow_redirects=False,
    )


def signed_in(username: str = "alice") -> TestClient:
    """A client holding ``username``'s session cookie (their password is ``PASSWORD``)."""
    client = make_client()
    response = login(client, username)
    assert response.status_code == 303, response.text
    return client


def bearer(token: str) -> TestClient:
    return make_client(headers={"Authorization": f"Bearer {token}"})
