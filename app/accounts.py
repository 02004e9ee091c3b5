"""Users and API tokens: keyword-only functions over a session, like app/crud.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.models import ApiToken, User, utcnow
from app.security import hash_password, hash_token, new_token, verify_password

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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


def list_users(*, session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = get_user(session=session, username=username)
    if user is None or not verify_password(user.password_hash, password):
        return None
    return user


def create_token(*, session: Session, user: User, name: str) -> str:
    """Returns the token itself: the only time it is ever shown."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_token(token)))
    session.flush()
    return token


def user_for_token(*, session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        return None
    now = utcnow()
    last = row.last_used_at
    # Reads happen per request; the write only about once a minute.
    if last is None or (now - last.replace(tzinfo=now.tzinfo)).total_seconds() > 60:
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
