"""The workers page: who is online, what each runs, and the queue behind them."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Status
from app.services.workers import list_online
from app.web.deps import SessionDep
from app.web.templating import FRAGMENT_VIEWER, SIGNED_IN, page_router, templates

router = page_router()

QUEUE_SHOWN = 50
WORKERS_POLL_MILLISECONDS = 3000


def workers_context(session: Session) -> dict[str, Any]:
    """The workers GET /api/workers lists, and the queue oldest first: the order
    ``crud.queue_position`` counts in."""
    queue, queued = crud.list_experiments(
        session=session, status=Status.queued, sort="created_at", descending=False,
        limit=QUEUE_SHOWN,
    )  # fmt: skip
    return {"workers": list_online(session), "queue": queue, "queued": queued}


@router.get("/workers", dependencies=SIGNED_IN)
def workers_page(request: Request, session: SessionDep) -> Response:
    context = {**workers_context(session), "poll_milliseconds": WORKERS_POLL_MILLISECONDS}
    return templates.TemplateResponse(request, "workers.html", context)


@router.get("/workers/live", dependencies=FRAGMENT_VIEWER)
def workers_live(request: Request, session: SessionDep) -> Response:
    """The page's two tables alone: static/workers.js swaps them in every few seconds."""
    return templates.TemplateResponse(request, "_workers.html", workers_context(session))
