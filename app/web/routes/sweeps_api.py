"""The sweeps API: launch a set of trials, read how they stand, cancel or retry them.

Thin over ``app.services.sweeps``; its domain errors (SpecError 422, NotFound 404, Conflict
409, QuotaExceeded 429) are answered by the handlers ``app.web.routes.api`` installs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from app.core import crud
from app.core.schemas import ERROR_RESPONSES, Count, RowId
from app.services import sweeps
from app.web import sweep_public
from app.web.auth import ActorDep, ensure_can_modify, viewer
from app.web.deps import SessionDep, SweepCacheDep
from app.web.sweep_public import (
    SweepCreatedPublic,
    SweepPublic,
    SweepsPublic,
    SweepTrialIdsPublic,
)

router = APIRouter(
    prefix="/api", tags=["sweeps"], dependencies=[Depends(viewer)], responses=ERROR_RESPONSES
)


@router.post(
    "/sweeps",
    status_code=201,
    response_model=SweepCreatedPublic,
    responses=sweep_public.sweep_links(),
)
def create_sweep(
    session: SessionDep,
    principal: ActorDep,
    spec: Annotated[dict[str, Any], Body(examples=[sweep_public.SWEEP_EXAMPLE])],
) -> SweepCreatedPublic:
    """Launch a sweep: a base spec (`model`, `hyperparameters`), axes that vary it (`grid`:
    values, all combined; `random`: `trials` draws, each `{"distribution": "uniform" |
    "log_uniform" | "choice", "low", "high"}` or `{"distribution": "choice", "values"}`),
    `seeds` (a list, or a count), `max_parallel` and `pruning` (the `spec` of GET
    /api/sweeps/{id} is its schema). Every trial is validated first; a 422 names the axis,
    the value's index and the field (`grid.learning_rate[2]`), and stores nothing."""
    return sweep_public.created(sweeps.launch_sweep(session, spec, owner_id=principal.user_id))


@router.get("/sweeps", response_model=SweepsPublic)
def list_sweeps(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[Count, Query()] = 0,
) -> SweepsPublic:
    """Sweeps, newest first, each with how many of its trials are in each status."""
    rows, total = crud.list_sweeps(session=session, limit=limit, offset=offset)
    counts = crud.sweep_status_counts(session=session, sweep_ids=[row.id for row in rows])
    items = [sweep_public.summary(row, counts[row.id]) for row in rows]
    return SweepsPublic(items=items, total=total)


@router.get("/sweeps/{sweep_id}", response_model=SweepPublic)
def get_sweep(session: SessionDep, cache: SweepCacheDep, sweep_id: RowId) -> Response:
    """The sweep's spec and every trial (its varied values and seed, status and metrics),
    the counts per status, the best trial so far and an ETA."""
    body = cache.get(session, sweep_id).part(
        "api", lambda view: sweep_public.detail(view).model_dump_json().encode()
    )
    return Response(body, media_type="application/json")


@router.post("/sweeps/{sweep_id}/cancel", response_model=SweepTrialIdsPublic)
def cancel_sweep(session: SessionDep, principal: ActorDep, sweep_id: RowId) -> SweepTrialIdsPublic:
    """Cancel the sweep's queued and running trials; answers the ids cancelled (none when
    every trial had finished). Finished trials keep their results."""
    sweep = sweeps.get(session, sweep_id)
    ensure_can_modify(principal, sweep)
    return sweep_public.trial_ids(sweep, sweeps.cancel_sweep(session, sweep))


@router.post("/sweeps/{sweep_id}/retry", response_model=SweepTrialIdsPublic)
def retry_sweep(session: SessionDep, principal: ActorDep, sweep_id: RowId) -> SweepTrialIdsPublic:
    """Queue the sweep's failed and cancelled trials again (each resumes from its last
    checkpoint), under the same `max_parallel`; a 409 when there is none to retry."""
    sweep = sweeps.get(session, sweep_id)
    ensure_can_modify(principal, sweep)
    return sweep_public.trial_ids(sweep, sweeps.retry_failed(session, sweep))
