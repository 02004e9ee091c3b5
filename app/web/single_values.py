"""Refuses a query parameter or header given twice where the API takes it once.

FastAPI reads a single-valued query parameter given twice as its last value, so
``GET /api/experiments?owner=ann&owner=bob`` listed bob's runs alone and said nothing; a
header given twice it reads as its first value, so a second ``Idempotency-Key`` was
dropped. The API's own schema says which parameters take several values (an ``array``:
``status``, ``model`` and ``tag`` there); a repeat of any other is a 422 naming it, as every
other bad parameter is. Routes outside the schema (the pages) are left alone. The list's
column filters (``hp.seed=0``), which the schema cannot name, are refused the same way by
``app.web.list_filters.column_filters``, with ``repeated``'s message.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

CHECKED = ("query", "header")
"""Where a parameter may be repeated: a query string, or a header line."""


def repeated(where: str, name: str, count: int) -> dict[str, Any]:
    """The error for ``name`` given ``count`` times where it takes one value."""
    message = f"given {count} times; it takes one value"
    return {"loc": (where, name), "type": "value_error", "msg": message}


def _takes_several(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf", [schema])
    return any(branch.get("type") == "array" for branch in branches)


def _single_valued(request: Request) -> list[tuple[str, str]]:
    """The query parameters and headers the matched operation documents as taking one
    value, as (``query`` or ``header``, name)."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None)
    operation = request.app.openapi()["paths"].get(path, {}).get(request.method.lower(), {})
    return [
        (parameter["in"], parameter["name"])
        for parameter in operation.get("parameters", [])
        if parameter["in"] in CHECKED and not _takes_several(parameter.get("schema", {}))
    ]


def _count(request: Request, where: str, name: str) -> int:
    values = request.query_params if where == "query" else request.headers
    return len(values.getlist(name))


async def single_valued_query(request: Request) -> None:
    """An app-wide dependency: runs before each route's own parameters are read. Async, as
    it does no I/O: FastAPI would hand a plain function to its thread pool on every request."""
    params = request.query_params
    query_repeats = any(len(params.getlist(name)) > 1 for name in params)
    header_repeats = len(set(request.headers.keys())) < len(request.headers.raw)
    if not (query_repeats or header_repeats):
        return
    refused = sorted(
        (where, name) for where, name in _single_valued(request) if _count(request, where, name) > 1
    )
    if refused:
        raise RequestValidationError(
            [repeated(where, name, _count(request, where, name)) for where, name in refused]
        )
