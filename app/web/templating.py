"""What every HTML page shares: the Jinja environment, who is looking (the login redirect),
the error page, and the form guard's refusal drawn as a page.

Page routers come from ``page_router``, whose routes guard every form post with the session's
CSRF token (``PageRoute``): a new form route cannot forget the check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.hyperparameters import TEST_TIME_MEANINGS
from app.core.models import Status
from app.core.report_import import report_digits
from app.core.zoo import MODELS
from app.resources import TEMPLATES_DIR
from app.web import json_text
from app.web.auth import (
    CSRF_FIELD,
    UNSAFE_METHODS,
    ForgedForm,
    Principal,
    csrf_token,
    identify,
    require_form_token,
    viewer,
)
from app.web.deps import SessionDep
from app.web.formatting import (
    format_ago,
    format_compact,
    format_datetime,
    format_duration,
    format_mean_last,
    format_number,
    format_p_value,
    format_percent,
    format_signed,
    model_title,
)

PLOTLY_JS_URL = "/static/vendor/plotly.min.js"

# --- who is looking ----------------------------------------------------------------------------


def signed_in(request: Request) -> Principal | None:
    """The principal ``page_viewer`` found; None on pages that do not ask (the login page)."""
    return getattr(request.state, "principal", None)


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?" + urlencode({"next": here})


def page_viewer(request: Request, session: SessionDep) -> Principal:
    """A visitor who must sign in goes to /login and comes back here afterwards; the
    principal stays on the request so the nav can say who is signed in."""
    principal = identify(request, session)
    if principal.auth_required and principal.user is None:
        raise HTTPException(303, detail="sign in first", headers={"Location": login_url(request)})
    request.state.principal = principal
    return principal


PageViewerDep = Annotated[Principal, Depends(page_viewer)]
SIGNED_IN = [Depends(page_viewer)]
FRAGMENT_VIEWER = [Depends(viewer)]


class PageRoute(APIRoute):
    """A page route; one that takes a form post (POST, PUT, PATCH, DELETE) first sends a
    visitor who must sign in to /login, then refuses a post without the session's CSRF token
    (``require_form_token``), both before the route's own code runs."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if {method.upper() for method in kwargs.get("methods") or ()} & UNSAFE_METHODS:
            kwargs["dependencies"] = [*FORM_GUARD, *(kwargs.get("dependencies") or ())]
        super().__init__(path, endpoint, **kwargs)


FORM_GUARD = [Depends(page_viewer), Depends(require_form_token)]


def page_router() -> APIRouter:
    """A router for HTML pages, left out of the OpenAPI schema, whose form routes are
    guarded (``PageRoute``): a new form cannot forget the CSRF check."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


# --- templates ---------------------------------------------------------------------------------


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        auto_reload=False,  # templates ship with the package: no file check per render
    )
    env.filters.update(
        datetime=format_datetime,
        ago=format_ago,
        duration=format_duration,
        percent=format_percent,
        number=format_number,
        compact=format_compact,
        mean_last=format_mean_last,
        model_title=model_title,
        signed=format_signed,
        p_value=format_p_value,
    )
    env.policies["json.dumps_function"] = json_text.dumps
    env.globals.update(
        plotly_js_url=PLOTLY_JS_URL, statuses=list(Status), models=MODELS, csrf_token=csrf_token,
        csrf_field=CSRF_FIELD, signed_in=signed_in, report_digits=report_digits,
        test_time_meanings=TEST_TIME_MEANINGS,
    )  # fmt: skip
    return env


templates = Jinja2Templates(env=_environment())


# --- refusals drawn as pages -------------------------------------------------------------------

ERROR_TITLES = {403: "Refused", 404: "Not found", 422: "Cannot read this address"}
FORGED_FORM = (
    "This form was sent without the security token of your session: it may come from a page "
    "opened before you signed in again, or from another site. Nothing was changed. Go back, "
    "reload the page and send it again."
)


def error_page(request: Request, status_code: int, message: str) -> Response:
    title = ERROR_TITLES.get(status_code, "Cannot show this")
    context = {"status_code": status_code, "title": title, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=status_code)


def navigates_to_a_page(request: Request) -> bool:
    """A browser opening a page (its Accept names HTML), not the API, a script's fetch or
    curl: a refusal of its address is drawn as a page, not shown as JSON."""
    return (
        isinstance(request.scope.get("route"), PageRoute)
        and request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
    )


def not_found(request: Request, message: str) -> Response:
    return error_page(request, 404, message)


NO_PAGE = "There is no page at this address. Check it, or start again from the experiments."


def install_page_errors(app: FastAPI) -> None:
    """A form post without the session's token gets a page saying what happened, not JSON;
    so does a browser opening an address no route serves (it showed raw JSON, untitled)."""

    @app.exception_handler(ForgedForm)
    async def forged_form(request: Request, _: ForgedForm) -> Response:
        return error_page(request, 403, FORGED_FORM)

    @app.exception_handler(404)
    async def no_such_address(request: Request, exc: StarletteHTTPException) -> Response:
        unrouted = request.scope.get("route") is None  # a route's own 404 says what is missing
        browsing = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if unrouted and browsing:
            return error_page(request, 404, NO_PAGE)
        return await http_exception_handler(request, exc)
