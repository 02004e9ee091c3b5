"""Refuses request text that the database cannot store or JSON cannot carry, before any route.

PostgreSQL's text types cannot hold NUL (U+0000): a name, note, tag, list filter or password
holding one failed deep in the driver as a 500, on the unauthenticated /login too. Python's
``json`` reads ``NaN`` and ``Infinity`` (JSON has neither), which then reached the database
the same way. JSON nested a thousand levels deep overflowed Python's parser (a 500 on any
path, signed in or not). One check of every query string, form and JSON body covers every
route, and answers with the API's 422 shape, naming the field. Forms come URL-encoded (the
pages send nothing else); a multipart body, which no route needs, is refused rather than
left unchecked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NUL_MESSAGE = "text may not contain NUL (\\u0000) characters"
NONFINITE_MESSAGE = "NaN and Infinity are not JSON numbers; send a finite number"
DEPTH_MESSAGE = "JSON nested more than {depth} levels deep"
MAX_JSON_DEPTH = 32
"""Far deeper than any body the API takes (a sweep's grid is three levels), far shallower than
where Python's recursion limit stops ``json`` and the check's own walk."""
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART_TYPE = "multipart/form-data"
MULTIPART_MESSAGE = f"multipart bodies are not taken; send forms as {FORM_TYPE}"


class _NonFinite:
    """Where a body said NaN or Infinity: json.loads hands these to ``parse_constant``."""


NONFINITE = _NonFinite()


def _parse_float(text: str) -> float | _NonFinite:
    value = float(text)  # 1e999 is valid JSON that Python reads as infinity
    return value if math.isfinite(value) else NONFINITE


def _pairs_problem(pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "") or "request", NUL_MESSAGE
    return None


class _TooDeep(Exception):
    """A body nested past ``MAX_JSON_DEPTH`` levels."""


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every key and value with where it is: ``("tags", "0")`` for the first tag. Raises
    ``_TooDeep`` past ``MAX_JSON_DEPTH`` levels."""
    if len(path) > MAX_JSON_DEPTH:
        raise _TooDeep
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))


def _json_problem(body: bytes) -> tuple[str, str] | None:
    too_deep = "body", DEPTH_MESSAGE.format(depth=MAX_JSON_DEPTH)
    try:
        data = json.loads(body, parse_constant=lambda _: NONFINITE, parse_float=_parse_float)
    except RecursionError:
        return too_deep
    except ValueError:
        return None  # not JSON at all: the route's own validation says so
    try:
        for path, value in _walk(data):
            field = ".".join(path).replace("\x00", "") or "body"
            if value is NONFINITE:
                return field, NONFINITE_MESSAGE
            if isinstance(value, str) and "\x00" in value:
                return field, NUL_MESSAGE
    except _TooDeep:
        return too_deep
    return None


def _body_problem(content_type: str, body: bytes) -> tuple[str, str] | None:
    if content_type == FORM_TYPE:
        return _pairs_problem(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    return _json_problem(body)


def _content_type(scope: Scope) -> str:
    raw = dict(scope["headers"]).get(b"content-type", b"")
    return raw.decode("latin-1").split(";")[0].strip().lower()


def _reads_body(content_type: str) -> bool:
    return content_type == FORM_TYPE or content_type.endswith("json")


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    return b"".join(m.get("body", b"") for m in messages), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The app reads the body this guard read, then the connection as usual."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def refusal(field: str, message: str, status_code: int = 422) -> JSONResponse:
    return JSONResponse(
        {"detail": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
        status_code=status_code,
    )


class InputGuard:
    """A plain ASGI middleware; it reads a body only when it is a URL-encoded form or JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        problem = _pairs_problem(parse_qsl(query, keep_blank_values=True))
        content_type = _content_type(scope)
        if problem is None and content_type == MULTIPART_TYPE:
            await refusal("body", MULTIPART_MESSAGE, status_code=415)(scope, receive, send)
            return
        if problem is None and _reads_body(content_type):
            body, messages = await _read_body(receive)
            receive = _replay(messages, receive)
            problem = _body_problem(content_type, body)
        if problem is not None:
            await refusal(*problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)
