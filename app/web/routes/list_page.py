"""The experiments list: filters (``app.web.list_filters``), sortable columns, pages."""

from __future__ import annotations

import math
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import Response

from app.core import crud
from app.core.models import INTEGER_MAX
from app.core.schemas import summaries
from app.web.deps import SessionDep
from app.web.list_filters import DEFAULT_SORT, ExperimentFilters
from app.web.templating import PageViewerDep, page_router, templates

router = page_router()

PAGE_SIZE = 25
MAX_PAGE = INTEGER_MAX // PAGE_SIZE

# Each sortable column and the order its first click gives: names A-Z, numbers highest first.
FIRST_ORDER = {
    "name": "asc", "model": "asc", "status": "asc", "current_epoch": "desc",
    "test_accuracy": "desc", "macro_f1": "desc", "parameters": "desc", "created_at": "desc",
}  # fmt: skip


def _list_url(filters: dict[str, str], page: int = 1) -> str:
    """Only what differs from the defaults goes in the URL, so the plain list stays ``/``."""
    query = {key: value for key, value in filters.items() if value}
    if (query.get("sort", DEFAULT_SORT), query.get("order", "desc")) == (DEFAULT_SORT, "desc"):
        query.pop("sort", None)
        query.pop("order", None)
    if page > 1:
        query["page"] = str(page)
    return "/?" + urlencode(query) if query else "/"


def _sort_links(filters: dict[str, str]) -> dict[str, str]:
    """A column's header link: the same column again flips its order, another starts at its
    own first order; either way back to page 1."""
    links = {}
    for column, first in FIRST_ORDER.items():
        flipped = "asc" if filters["order"] == "desc" else "desc"
        order = flipped if filters["sort"] == column else first
        links[column] = _list_url({**filters, "sort": column, "order": order})
    return links


def page_filters(request: Request) -> ExperimentFilters:
    return ExperimentFilters.lenient(request.query_params)


@router.get("/")
def experiments_page(
    request: Request,
    session: SessionDep,
    principal: PageViewerDep,
    filters: Annotated[ExperimentFilters, Depends(page_filters)],
    page: int = 1,
) -> Response:
    page = min(max(page, 1), MAX_PAGE)
    items, total = crud.list_experiments(
        session=session, **filters.query(principal), limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    shown = filters.as_strings()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "experiments": summaries(items),
        "total": total,
        "filters": shown,
        "filtered": filters.filtered,
        "sort_links": _sort_links(shown),
        "page": page,
        "previous_url": _list_url(shown, page - 1) if page > 1 else None,
        "next_url": _list_url(shown, page + 1) if page < pages else None,
        "pages": pages,
        "principal": principal,
        "show_owners": principal.auth_required or principal.user is not None,
    }
    return templates.TemplateResponse(request, "experiments.html", context)
