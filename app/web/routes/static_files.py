"""plotly.js, served from the installed plotly package with a content ETag."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import FileResponse, Response

from app.web.templating import PLOTLY_JS_URL

router = APIRouter(include_in_schema=False)


@lru_cache
def _plotly_js() -> tuple[Path, str]:
    """The bundled plotly.js and a content ETag, computed once per process."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    return path, f'"{digest}"'


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


@router.api_route(PLOTLY_JS_URL, methods=["GET", "HEAD"])
def plotly_js(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """Served, not copied into the repo and never from a CDN: pages work offline."""
    path, etag = _plotly_js()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="text/javascript", headers=headers)
