"""Sign in and out in the browser: a session cookie holds the user's id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from app import accounts
from app.auth import CSRF_FIELD, csrf_matches
from app.deps import SessionDep
from app.routes.pages import FORGED_FORM, error_page, templates
from app.security import new_csrf_token

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only paths on this site: a login link must not bounce the user elsewhere. Browsers read
    ``/\\host`` as ``//host`` and drop tabs and newlines, so those are refused too."""
    if not target or not target.startswith("/") or not target.isprintable():
        return "/"
    if target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, error: str | None, next_url: str, status: int = 200, username: str = ""
) -> Response:
    """A refused sign-in keeps the username, so only the password is typed again."""
    context = {"error": error, "next": next_url, "username": username}
    return templates.TemplateResponse(request, "login.html", context, status_code=status)


@router.get("/login")
def login_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return _login_page(request, None, _safe_next(next_url))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    next_url = _safe_next(next_url)
    if not csrf_matches(request, csrf):
        expired = "The form expired; please sign in again."
        return _login_page(request, expired, next_url, 403, username)
    user = accounts.authenticate(session=session, username=username, password=password)
    if user is None:
        return _login_page(request, "Wrong username or password.", next_url, 401, username)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session["user_id"] = user.id
    request.session[CSRF_FIELD] = new_csrf_token()
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "") -> Response:
    if not csrf_matches(request, csrf):
        return error_page(request, 403, FORGED_FORM)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
