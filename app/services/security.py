"""Password hashing (Argon2, via argon2-cffi) and API tokens (random, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
TOKEN_PREFIX = "cl_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password: use at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


@cache
def _unknown_user_hash() -> str:
    """Made once per process, with the same parameters as every stored hash."""
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_password(password_hash: str | None, password: str) -> bool:
    """``None`` (no such user) is checked against a throwaway hash: the same Argon2 work, so
    how long a sign-in takes does not tell who has an account."""
    try:
        matches = _hasher.verify(password_hash or _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """A fast hash is enough: tokens are long random strings, not guessable passwords."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
