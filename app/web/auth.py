"""Who is asking, and may they? Sessions for the browser, Bearer tokens for API and CLI.

The browser's signed cookie carries the CSRF token and the id of a server-side session
(table ``browser_sessions``); the session, not the cookie, says who is signed in, so logout,
a password change or disabling the user ends it even for a copied cookie.

Sign-in is required once any account exists (unless CIFARLAB_AUTH=disabled). Without
accounts, cifarlab runs open, which ``cifarlab up`` and ``cifarlab web`` allow only on a
loopback address. Everyone signed in can read; only an experiment's owner or an admin
may change it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import get_settings
from app.core.loopback import is_loopback
from app.core.models import Experiment, Sweep, User
from app.services import accounts
from app.services.security import new_csrf_token
from app.web.deps import SessionDep

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_ID = "session_id"
"""The cookie's key for the server-side session's id (see accounts.start_session)."""
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Principal:
    """The caller: a user, or nobody when cifarlab runs open (no accounts)."""

    user: User | None
    auth_required: bool
    via_cookie: bool

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user else None

    def can_modify(self, owned: Experiment | Sweep) -> bool:
        """An experiment, or a sweep with its trials: its owner or an admin."""
        if not self.auth_required:
            return True
        return self.user is not None and (self.user.is_admin or owned.owner_id == self.user.id)


def auth_required(session: Session) -> bool:
    return get_settings().auth != "disabled" and accounts.any_users(session=session)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use; forms and page scripts send it back."""
    token = request.session.get(CSRF_FIELD)
    if not token:
        token = new_csrf_token()
        request.session[CSRF_FIELD] = token
    return str(token)


def csrf_matches(request: Request, sent: str | None) -> bool:
    expected = request.session.get(CSRF_FIELD)
    return bool(expected and sent and hmac.compare_digest(str(expected), sent))


class ForgedForm(Exception):
    """A form post without the session's CSRF token; pages draw it as a 403 page
    (``app.web.templating.install_page_errors``)."""


async def require_form_token(request: Request) -> None:
    """Another site can make a browser post a form here, cookies and all, but cannot read
    the token the page was rendered with; without it nothing happens. A dependency of every
    page route that takes a form (``app.web.templating.PageRoute``), checked before the
    route runs; Starlette keeps the parsed form, so the route reads it again for free."""
    sent = (await request.form()).get(CSRF_FIELD)
    if not csrf_matches(request, sent if isinstance(sent, str) else None):
        raise ForgedForm


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def refuse_rebound_names(request: Request) -> None:
    """An open cifarlab (no accounts) answers only to loopback names. Through DNS rebinding a
    web page can point its own name at 127.0.0.1; the browser then sends that name as Host and
    Origin alike, which passes the cross-site guard, and the page could read, launch and delete
    at will. A name the attacker controls never resolves to loopback by itself, so requiring a
    loopback Host closes it (as Jupyter does). With accounts, such a page has no session."""
    hostname = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    if get_settings().auth == "auto" and not is_loopback(hostname):
        raise HTTPException(
            403,
            detail="this cifarlab has no accounts, so it answers only at localhost or a "
            "loopback address; create an account (cifarlab user create NAME --admin) to serve "
            "it under other names",
        )


def identify(request: Request, session: Session) -> Principal:
    required = auth_required(session)
    if not required:
        refuse_rebound_names(request)
    token = _bearer(request)
    if token is not None:
        try:
            user = accounts.user_for_token(session=session, token=token)
        except accounts.TokenRefused as exc:
            raise HTTPException(401, detail=str(exc)) from None
        session.commit()
        return Principal(user=user, auth_required=required, via_cookie=False)
    session_id = request.session.get(SESSION_ID)
    found = (
        accounts.user_for_session(session=session, session_id=str(session_id))
        if session_id
        else None
    )
    if found is not None:
        session.commit()
    return Principal(user=found, auth_required=required, via_cookie=found is not None)


def viewer(request: Request, session: SessionDep) -> Principal:
    """Anyone signed in (or anyone at all when cifarlab runs open)."""
    principal = identify(request, session)
    if principal.auth_required and principal.user is None:
        raise HTTPException(
            401,
            detail="sign in at /login, or send an API token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def actor(principal: Annotated[Principal, Depends(viewer)], request: Request) -> Principal:
    """A viewer about to change something: a browser session must prove it is our page."""
    if principal.via_cookie and request.method in UNSAFE_METHODS:
        if not csrf_matches(request, request.headers.get(CSRF_HEADER)):
            raise HTTPException(403, detail=f"missing or wrong {CSRF_HEADER} header")
    return principal


def ensure_can_modify(principal: Principal, owned: Experiment | Sweep) -> None:
    if not principal.can_modify(owned):
        kind = "sweep" if isinstance(owned, Sweep) else "experiment"
        raise HTTPException(
            403, detail=f"only the owner of {kind} {owned.id} or an admin can change it"
        )


def same_origin(connection: HTTPConnection) -> bool:
    """Browsers send Origin on every POST: one naming another site is cross-site forgery,
    whatever cookies came along (and even when cifarlab runs open on loopback)."""
    origin = connection.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == connection.headers.get("host")


class CrossSiteWriteGuard:
    """Refuses cross-site writes before any route runs. A plain ASGI middleware: Starlette's
    BaseHTTPMiddleware would cost every request, reads included, an extra task and stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            if not same_origin(HTTPConnection(scope)):
                refusal = JSONResponse(
                    {"detail": "cross-site request refused: send it from cifarlab's own pages"},
                    status_code=403,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


ViewerDep = Annotated[Principal, Depends(viewer)]
ActorDep = Annotated[Principal, Depends(actor)]
