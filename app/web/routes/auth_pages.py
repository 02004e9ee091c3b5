"""Sign in and out in the browser: the cookie holds the id of a server-side session.

Signing in gives its admission turn back while Argon2 runs (see app/web/deps.py), checks an
unknown username against a throwaway hash all the same, and refuses with 429 once an account
or a client address has too many recent wrong passwords (counted in the database, so every
web process sees them).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.models import USERNAME_LENGTH
from app.core.schemas import FieldError
from app.services import accounts
from app.services.security import new_csrf_token, verify_password
from app.web.auth import CSRF_FIELD, SESSION_ID, csrf_matches, require_form_token
from app.web.deps import SessionDep, admitted_session, hashing_turn
from app.web.forms import attach_errors
from app.web.templating import templates

router = APIRouter(include_in_schema=False)

MAX_PASSWORD = 1024
LOGIN_INPUTS = {"username": "username", "password": "password"}
"""The sign-in form's input ids by the field their errors name."""


def _safe_next(target: str | None) -> str:
    """Only paths on this site: a login link must not bounce the user elsewhere. Browsers read
    ``/\\host`` as ``//host`` and drop tabs and newlines, so those are refused too."""
    if not target or not target.startswith("/") or not target.isprintable():
        return "/"
    if target.startswith("//") or "\\" in target:
        return "/"
    return target


def _refusal(message: str) -> FieldError:
    """A refusal about neither box alone (a wrong username or password): the summary says it."""
    return FieldError(field="", message=message)


def _login_page(
    request: Request,
    error: FieldError | None,
    next_url: str,
    status: int = 200,
    username: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """A refused sign-in keeps the username, so only the password is typed again; its error
    goes next to the box it names, if it names one, and in the summary above the form."""
    errors = [error] if error else []
    attached, unattached = attach_errors(errors, LOGIN_INPUTS)
    context = {
        "errors": errors, "attached": attached, "unattached": unattached, "next": next_url,
        "username": username, "max_username": USERNAME_LENGTH, "max_password": MAX_PASSWORD,
    }  # fmt: skip
    return templates.TemplateResponse(
        request, "login.html", context, status_code=status, headers=headers
    )


def _begin(session: Session, username: str, address: str) -> accounts.LoginAttempt:
    attempt = accounts.begin_login(session=session, username=username, address=address)
    session.commit()
    return attempt


def _finish(session: Session, attempt: accounts.LoginAttempt, password_ok: bool) -> str | None:
    session_id = accounts.finish_login(session=session, attempt=attempt, password_ok=password_ok)
    session.commit()
    return session_id


@router.get("/login")
def login_form(
    request: Request, next_url: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    return _login_page(request, None, _safe_next(next_url))


def _form_problem(username: str, password: str) -> FieldError | None:
    """What the sign-in form lacks, in words for the page (a JSON 422 is no page to read)."""
    if not 1 <= len(username) <= USERNAME_LENGTH:
        return FieldError(field="username", message=f"give 1 to {USERNAME_LENGTH} characters.")
    if not 1 <= len(password) <= MAX_PASSWORD:
        return FieldError(field="password", message=f"give 1 to {MAX_PASSWORD} characters.")
    return None


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form(alias=CSRF_FIELD)] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    next_url = _safe_next(next_url)
    if problem := _form_problem(username, password):
        return _login_page(request, problem, next_url, 422, username[:USERNAME_LENGTH])
    # Not ``require_form_token``: a sign-in form that expired is drawn again, username kept.
    if not csrf_matches(request, csrf):
        expired = _refusal("The form expired; please sign in again.")
        return _login_page(request, expired, next_url, 403, username)
    address = request.client.host if request.client else "unknown"
    async with admitted_session(request) as session:
        attempt = await run_in_threadpool(_begin, session, username, address)
    if attempt.retry_after is not None:
        minutes = math.ceil(attempt.retry_after / 60)
        message = (f"Too many wrong passwords for this account or from this address; "
                   f"try again in {minutes} minute{'s' if minutes != 1 else ''}.")  # fmt: skip
        headers = {"Retry-After": str(attempt.retry_after)}
        return _login_page(request, _refusal(message), next_url, 429, username, headers)
    async with hashing_turn(request):
        password_ok = await run_in_threadpool(verify_password, attempt.password_hash, password)
    async with admitted_session(request) as session:
        session_id = await run_in_threadpool(_finish, session, attempt, password_ok)
    if session_id is None:
        if password_ok and attempt.disabled:
            disabled = _refusal("This account is disabled; ask an admin.")
            return _login_page(request, disabled, next_url, 403, username)
        wrong = _refusal("Wrong username or password.")
        return _login_page(request, wrong, next_url, 401, username)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session[SESSION_ID] = session_id
    request.session[CSRF_FIELD] = new_csrf_token()
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout", dependencies=[Depends(require_form_token)])
def logout(request: Request, session: SessionDep) -> Response:
    session_id = request.session.get(SESSION_ID)
    if session_id:
        accounts.end_session(session=session, session_id=str(session_id))
        session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
