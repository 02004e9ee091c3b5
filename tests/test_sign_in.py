"""Sessions and tokens that can be taken back, and sign-in that cannot be guessed at speed
(cifarlab issue 12, items 5 and 6). Through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.models import ApiToken, utcnow
from app.services import accounts
from tests.support.clients import PASSWORD, bearer, login, login_token, make_client, signed_in

pytestmark = pytest.mark.both_databases
DEADLINE = 20  # seconds: a bound on waiting, not a timing assertion


@pytest.fixture
def alice(session: Session) -> str:
    """alice's API token (and bob, another account)."""
    user = accounts.create_user(session=session, username="alice", password=PASSWORD,
                                is_admin=False)  # fmt: skip
    accounts.create_user(session=session, username="bob", password=PASSWORD, is_admin=False)
    token = accounts.create_token(session=session, user=user, name="t", expires_at=None)
    session.commit()
    return token


def setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(f"CIFARLAB_{name}", value)
    get_settings.cache_clear()


def copy_of(client: TestClient) -> TestClient:
    """Another browser holding a copy of the cookie."""
    return make_client(cookies=dict(client.cookies))


# --- item 5: sessions and tokens can be taken back --------------------------------------------


def test_a_copied_cookie_stops_working_at_logout(alice: str) -> None:
    browser = signed_in()
    thief = copy_of(browser)
    assert thief.get("/api/experiments").status_code == 200
    out = browser.post("/logout", data={"csrf_token": login_token(browser)}, follow_redirects=False)
    assert out.status_code == 303
    assert thief.get("/api/experiments").status_code == 401
    assert thief.get("/", follow_redirects=False).status_code == 303  # to /login


def test_a_password_change_signs_out_every_browser(alice: str, session: Session) -> None:
    first, second, other = signed_in(), signed_in(), signed_in("bob")
    user = accounts.get_user(session=session, username="alice")
    accounts.set_password(session=session, user=user, password="a new long password")
    session.commit()
    assert first.get("/api/experiments").status_code == 401
    assert second.get("/api/experiments").status_code == 401
    assert other.get("/api/experiments").status_code == 200  # bob is not touched
    assert login(make_client(), "alice").status_code == 401
    assert login(make_client(), "alice", "a new long password").status_code == 303


def test_a_disabled_user_is_signed_out_and_their_tokens_refused(
    alice: str, session: Session
) -> None:
    browser = signed_in()
    user = accounts.get_user(session=session, username="alice")
    accounts.set_disabled(session=session, user=user, disabled=True)
    session.commit()
    assert browser.get("/api/experiments").status_code == 401
    refused = bearer(alice).get("/api/experiments")
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    again = login(make_client(), "alice")
    assert again.status_code == 403 and "disabled" in again.text
    accounts.set_disabled(session=session, user=user, disabled=False)
    session.commit()
    assert bearer(alice).get("/api/experiments").status_code == 200


def test_tokens_expire_and_can_be_revoked(alice: str, session: Session) -> None:
    user = accounts.get_user(session=session, username="alice")
    token = accounts.create_token(
        session=session, user=user, name="ci", expires_at=accounts.default_token_expiry()
    )
    session.commit()
    row = next(r for r in accounts.list_tokens(session=session, user=user) if r.name == "ci")
    lifetime = row.expires_at.replace(tzinfo=None) - utcnow().replace(tzinfo=None)
    assert timedelta(days=89) < lifetime <= timedelta(days=90)  # the default, a setting
    assert bearer(token).get("/api/experiments").status_code == 200
    session.execute(
        update(ApiToken).where(ApiToken.id == row.id).values(expires_at=utcnow() - timedelta(1))
    )
    session.commit()
    expired = bearer(token).get("/api/experiments")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    first = accounts.list_tokens(session=session, user=user)[0]
    accounts.revoke_token(session=session, token_id=first.id)
    session.commit()
    assert bearer(alice).get("/api/experiments").status_code == 401
    with pytest.raises(ValueError, match="no token"):
        accounts.revoke_token(session=session, token_id=first.id)


def session_cookie(response) -> str:  # noqa: ANN001
    return next(v for v in response.headers.get_list("set-cookie") if "cifarlab_session" in v)


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = make_client()
    assert "secure" not in session_cookie(plain.get("/login")).lower()
    direct = make_client(base_url="https://testserver")
    assert "secure" in session_cookie(direct.get("/login")).lower()
    forwarded = {"X-Forwarded-Proto": "https"}
    claimed = make_client().get("/login", headers=forwarded)
    assert "secure" not in session_cookie(claimed).lower()  # anyone may send the header
    setting(monkeypatch, "TRUSTED_PROXIES", "testclient")  # TestClient's peer address
    proxied = make_client().get("/login", headers=forwarded)
    assert "secure" in session_cookie(proxied).lower()
    setting(monkeypatch, "COOKIE_SECURE", "always")
    assert "secure" in session_cookie(make_client().get("/login")).lower()


# --- item 6: sign-in cannot be guessed at speed, nor slow everyone ------------------------------


def test_wrong_passwords_for_an_account_are_limited_in_every_process(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting(monkeypatch, "LOGIN_ATTEMPTS_PER_ACCOUNT", "3")
    processes = [make_client() for _ in range(3)]  # apps share only the database
    for client in processes:
        assert login(client, "alice", "wrong password").status_code == 401
    refused = login(make_client(), "alice")  # even the right password waits
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= get_settings().login_window_seconds
    assert "Too many wrong passwords" in refused.text and "try again in" in refused.text
    assert login(make_client(), "bob").status_code == 303  # other accounts sign in


def test_wrong_passwords_from_one_address_are_limited(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting(monkeypatch, "LOGIN_ATTEMPTS_PER_ADDRESS", "3")
    client = make_client()
    for name in ("carol", "dave", "erin"):  # one guess each: no account reaches its limit
        assert login(client, name, "wrong password").status_code == 401
    refused = login(client, "bob")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_guesses_sent_at_once_count_before_their_password_is_checked(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a hundred guesses in parallel would all pass the limit while the first
    ones were still hashing."""
    setting(monkeypatch, "LOGIN_ATTEMPTS_PER_ACCOUNT", "1")
    entered, release = threading.Event(), threading.Event()
    verify = PasswordHasher.verify

    def held(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002
        entered.set()
        release.wait(DEADLINE)
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", held)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(login, make_client(), "alice", "wrong password")
        assert entered.wait(DEADLINE)
        try:
            second = login(make_client(), "alice", "another guess")
        finally:
            release.set()
        assert second.status_code == 429
        assert first.result(timeout=DEADLINE).status_code == 401


def test_a_right_password_forgets_the_account_failures(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setting(monkeypatch, "LOGIN_ATTEMPTS_PER_ACCOUNT", "2")
    client = make_client()
    assert login(client, "alice", "wrong password").status_code == 401
    assert login(client, "alice").status_code == 303
    assert login(client, "alice", "wrong password").status_code == 401
    assert login(client, "alice").status_code == 303


def test_an_unknown_user_costs_the_same_password_check(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    verify = PasswordHasher.verify

    def counted(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002
        checked.append(password)
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counted)
    client = make_client()
    assert login(client, "alice", "wrong password 1").status_code == 401
    assert login(client, "nobody", "wrong password 2").status_code == 401
    assert checked == ["wrong password 1", "wrong password 2"]


def test_a_password_check_does_not_hold_a_request_slot(
    alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one request slot per process, a signed-in request is served while a sign-in
    is in the middle of its Argon2 check."""
    setting(monkeypatch, "REQUEST_CONCURRENCY", "1")
    entered, release = threading.Event(), threading.Event()
    verify = PasswordHasher.verify

    def held(self: PasswordHasher, hash: str, password: str) -> bool:  # noqa: A002
        entered.set()
        release.wait(DEADLINE)
        return verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", held)
    with make_client() as client, ThreadPoolExecutor(2) as pool:
        # One client: one event loop, so both requests meet the same admission semaphore.
        signing_in = pool.submit(login, client, "alice")
        assert entered.wait(DEADLINE)
        reading = pool.submit(
            client.get, "/api/experiments", headers={"Authorization": f"Bearer {alice}"}
        )
        try:
            status = reading.result(timeout=DEADLINE).status_code
        except FutureTimeout:
            status = None
        release.set()
        assert status == 200, "a signed-in request waited for a password check"
        assert signing_in.result(timeout=DEADLINE).status_code == 303
