"""Refuses a query parameter given twice where the API takes it once.

FastAPI reads a single-valued query parameter given twice as its last value, so
``GET /api/experiments?owner=ann&owner=bob`` listed bob's runs alone and said nothing. The
API's own schema says which parameters take several values (an ``array``: ``status``,
``model`` and ``tag`` there); a repeat of any other is a 422 naming it, as every other bad
parameter is. Routes outside the schema (the pages) are left alone.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def _takes_several(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf", [schema])
    return any(branch.get("type") == "array" for branch in branches)


def _single_valued(request: Request) -> set[str]:
    """The query parameters the matched operation documents as taking one value."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    operation = request.app.openapi()["paths"].get(path, {}).get(request.method.lower(), {})
    return {
        parameter["name"]
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query" and not _takes_several(parameter.get("schema", {}))
    }


async def single_valued_query(request: Request) -> None:
    """An app-wide dependency: runs before each route's own parameters are read. Async, as
    it does no I/O: FastAPI would hand a plain function to its thread pool on every request."""
    params = request.query_params
    repeated = {name for name in params if len(params.getlist(name)) > 1}
    refused = sorted(repeated & _single_valued(request)) if repeated else []
    if refused:
        raise RequestValidationError([
            {"loc": ("query", name), "type": "value_error",
             "msg": f"given {len(params.getlist(name))} times; it takes one value"}
            for name in refused
        ])  # fmt: skip
