"""The session cookie, Secure whenever the request came over HTTPS.

Whether it did is ``scope["scheme"]``: HTTPS to this server directly, or, behind a reverse
proxy listed in CIFARLAB_TRUSTED_PROXIES, what its X-Forwarded-Proto says (uvicorn's
ProxyHeadersMiddleware, installed in app/web/main.py; the server's own reading of those headers is
off, so nobody else can claim HTTPS or another client address).
"""

from __future__ import annotations

from typing import Literal

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "cifarlab_session"


class SessionCookie:
    """Starlette's SessionMiddleware fixes Secure once for all requests; this keeps one of
    each and picks per request. ``auto`` marks it Secure over HTTPS only, so plain-HTTP use
    on loopback keeps working."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        max_age: int,
        policy: Literal["auto", "always", "never"],
    ) -> None:
        self.policy = policy
        self.plain, self.secure = (
            SessionMiddleware(app, secret_key=secret_key, session_cookie=COOKIE,
                              max_age=max_age, same_site="lax", https_only=secure)
            for secure in (False, True)
        )  # fmt: skip

    def is_secure(self, scope: Scope) -> bool:
        if self.policy == "auto":
            return scope.get("scheme") in ("https", "wss")
        return self.policy == "always"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = self.secure if self.is_secure(scope) else self.plain
        await chosen(scope, receive, send)
