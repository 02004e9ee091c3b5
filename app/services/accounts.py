"""Users, API tokens, browser sessions and sign-in limits: keyword-only functions over a
session, like app/core/crud.py. Callers commit."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.models import (
    TOKEN_NAME_LENGTH,
    USERNAME_LENGTH,
    ApiToken,
    BrowserSession,
    LoginFailure,
    User,
    utcnow,
)
from app.services.security import hash_password, hash_token, new_session_id, new_token

USERNAME = re.compile(rf"^[A-Za-z0-9_.-]{{1,{USERNAME_LENGTH}}}$")
TOUCH_SECONDS = 60
"""Last-used times are written at most this often: reads happen per request."""


class TokenRefused(Exception):
    """An API token that does not sign anyone in; the message says why and what to do."""


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _stale(last: datetime | None, now: datetime) -> bool:
    return last is None or (now - _aware(last)).total_seconds() > TOUCH_SECONDS


# --- users ---------------------------------------------------------------------------------------


def any_users(*, session: Session) -> bool:
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def create_user(*, session: Session, username: str, password: str, is_admin: bool) -> User:
    if not USERNAME.match(username):
        raise ValueError("username: use 1 to 64 letters, digits, '.', '_' or '-'")
    if get_user(session=session, username=username) is not None:
        raise ValueError(f"username: {username!r} is taken")
    user = User(username=username, password_hash=hash_password(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def get_user(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def require_user(*, session: Session, username: str) -> User:
    user = get_user(session=session, username=username)
    if user is None:
        raise ValueError(f"no user {username!r}; create one with `cifarlab user create`")
    return user


def list_users(*, session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def set_password(*, session: Session, user: User, password: str) -> None:
    """A new password signs out every browser: whoever knew the old one is out too."""
    user.password_hash = hash_password(password)
    end_sessions(session=session, user=user)


def set_disabled(*, session: Session, user: User, disabled: bool) -> None:
    """A disabled user is signed out everywhere and their tokens are refused until enabled."""
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        end_sessions(session=session, user=user)


# --- API tokens ----------------------------------------------------------------------------------


def create_token(*, session: Session, user: User, name: str, expires_at: datetime | None) -> str:
    """Returns the token itself: the only time it is ever shown."""
    if not name.strip() or len(name) > TOKEN_NAME_LENGTH or not name.isprintable():
        raise ValueError(f"--name: give 1 to {TOKEN_NAME_LENGTH} printable characters")
    if expires_at is not None and expires_at <= utcnow():
        raise ValueError("expires: choose a time in the future")
    token = new_token()
    session.add(
        ApiToken(user_id=user.id, name=name, token_hash=hash_token(token), expires_at=expires_at)
    )
    session.flush()
    return token


def default_token_expiry() -> datetime:
    return utcnow() + timedelta(days=get_settings().token_days)


def list_tokens(*, session: Session, user: User | None = None) -> Sequence[ApiToken]:
    query = select(ApiToken).join(ApiToken.user).order_by(User.username, ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return session.scalars(query).all()


def revoke_token(*, session: Session, token_id: int) -> ApiToken:
    row = session.get(ApiToken, token_id)
    if row is None:
        raise ValueError(f"no token {token_id}; `cifarlab token list` shows their ids")
    session.delete(row)
    session.flush()
    return row


def user_for_token(*, session: Session, token: str) -> User:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise TokenRefused(
            "this API token is not valid; create a new one with `cifarlab token create`"
        )
    now = utcnow()
    if row.expires_at is not None and _aware(row.expires_at) <= now:
        raise TokenRefused(
            f"this API token expired on {_aware(row.expires_at):%Y-%m-%d}; "
            "create a new one with `cifarlab token create`"
        )
    if row.user.disabled_at is not None:
        raise TokenRefused(f"user {row.user.username!r} is disabled; ask an admin")
    if _stale(row.last_used_at, now):
        row.last_used_at = now
    return row.user


def bootstrap_admin(*, session: Session, username: str, password_file: Path | None) -> User | None:
    """The first admin of a new install, from settings (compose's `migrate` on first start).

    Created only while no account exists: later starts run the same command, and must never
    reset a password changed since or add a second admin. The password comes from a file (a
    Docker secret) so it is in neither the environment nor the compose file.
    """
    if any_users(session=session):
        return None
    if password_file is None:
        raise ValueError(
            "CIFARLAB_ADMIN_PASSWORD_FILE: set it to a file holding the first admin's password"
        )
    try:
        password = password_file.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ValueError(
            f"CIFARLAB_ADMIN_PASSWORD_FILE: cannot read {password_file}: {exc.strerror}"
        ) from None
    if not password.strip():
        raise ValueError(f"CIFARLAB_ADMIN_PASSWORD_FILE: {password_file} is empty")
    return create_user(session=session, username=username, password=password, is_admin=True)


# --- browser sessions ----------------------------------------------------------------------------


def start_session(*, session: Session, user: User) -> str:
    """Returns the new session's id for the cookie; only its hash is stored."""
    now = utcnow()
    session.execute(
        delete(BrowserSession).where(
            BrowserSession.user_id == user.id, BrowserSession.expires_at <= now
        )
    )
    session_id = new_session_id()
    expires = now + timedelta(days=get_settings().session_days)
    session.add(BrowserSession(user_id=user.id, id_hash=hash_token(session_id), created_at=now,
                               last_seen_at=now, expires_at=expires))  # fmt: skip
    session.flush()
    return session_id


def user_for_session(*, session: Session, session_id: str) -> User | None:
    """One indexed query per request: the session, unexpired, of a user not disabled."""
    now = utcnow()
    found = session.execute(
        select(BrowserSession, User)
        .join(BrowserSession.user)
        .where(
            BrowserSession.id_hash == hash_token(session_id),
            BrowserSession.expires_at > now,
            User.disabled_at.is_(None),
        )
    ).first()
    if found is None:
        return None
    browser, user = found
    if _stale(browser.last_seen_at, now):
        browser.last_seen_at = now
    return user


def end_session(*, session: Session, session_id: str) -> None:
    session.execute(delete(BrowserSession).where(BrowserSession.id_hash == hash_token(session_id)))


def end_sessions(*, session: Session, user: User) -> None:
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))


# --- sign-in limits ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginAttempt:
    """What a sign-in needs from the database before the password is checked."""

    username: str
    user_id: int | None
    password_hash: str | None
    disabled: bool
    retry_after: int | None
    """Seconds until another try is allowed; None when this one may go ahead."""
    counted: tuple[int, ...] = ()
    """The failure rows this attempt wrote in advance, taken back if the password is right."""


def _keys(username: str, address: str) -> tuple[str, str]:
    return f"account:{username}", f"address:{address}"


def _retry_after(*, session: Session, key: str, limit: int, now: datetime) -> int | None:
    """When the newest ``limit`` failures of ``key`` all fall in the window, another try waits
    until the oldest of them leaves it."""
    window = get_settings().login_window_seconds
    cutoff = now - timedelta(seconds=window)
    recent = session.scalars(
        select(LoginFailure.failed_at)
        .where(LoginFailure.key == key, LoginFailure.failed_at > cutoff)
        .order_by(LoginFailure.failed_at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    return max(1, int((_aware(recent[-1]) - cutoff).total_seconds()) + 1)


def begin_login(*, session: Session, username: str, address: str) -> LoginAttempt:
    """Refuses an account or address over its limit; otherwise counts this attempt as a
    failure before the password is checked, so guesses sent in parallel cannot all pass the
    check while the first ones are still hashing."""
    settings = get_settings()
    now = utcnow()
    account, client = _keys(username, address)
    waits = [
        _retry_after(session=session, key=account,
                     limit=settings.login_attempts_per_account, now=now),
        _retry_after(session=session, key=client,
                     limit=settings.login_attempts_per_address, now=now),
    ]  # fmt: skip
    retry_after = max((wait for wait in waits if wait is not None), default=None)
    user = get_user(session=session, username=username)
    counted: tuple[int, ...] = ()
    if retry_after is None:
        cutoff = now - timedelta(seconds=settings.login_window_seconds)
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= cutoff))
        rows = [LoginFailure(key=account, failed_at=now), LoginFailure(key=client, failed_at=now)]
        session.add_all(rows)
        session.flush()
        counted = tuple(row.id for row in rows)
    return LoginAttempt(
        username=username, user_id=user.id if user else None,
        password_hash=user.password_hash if user else None,
        disabled=bool(user and user.disabled_at is not None), retry_after=retry_after,
        counted=counted,
    )  # fmt: skip


def finish_login(*, session: Session, attempt: LoginAttempt, password_ok: bool) -> str | None:
    """A right password takes back this attempt's failures and the account's earlier ones,
    and starts a session (its id returned) unless the user is disabled. A wrong one stays
    counted."""
    if not password_ok:
        return None
    account = f"account:{attempt.username}"
    session.execute(
        delete(LoginFailure).where(
            (LoginFailure.key == account) | LoginFailure.id.in_(attempt.counted)
        )
    )
    user = session.get(User, attempt.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return start_session(session=session, user=user)
