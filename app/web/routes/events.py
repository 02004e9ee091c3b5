"""Server-sent events for the live experiment page, fed by polling the database.

The worker writes to the database only, so polling it (a few cheap indexed reads per tick)
works the same on SQLite and PostgreSQL and needs no extra channel between worker and web.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core import crud
from app.core.db import get_sessionmaker
from app.core.models import INTEGER_MAX
from app.core.schemas import (
    ERROR_RESPONSES,
    Count,
    EpochMetricPublic,
    EvaluationPublic,
    ExperimentPublic,
    RowId,
)
from app.services import quotas
from app.web.auth import viewer

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)

POLL_SECONDS = 0.5
PING_SECONDS = 15.0
RETRY_MILLISECONDS = 2000


@dataclass(frozen=True)
class Snapshot:
    experiment: ExperimentPublic
    epochs: list[EpochMetricPublic]
    evaluation: EvaluationPublic | None


@dataclass
class StreamState:
    """What this client has been sent, so each tick sends only what changed."""

    last_epoch: int
    experiment: ExperimentPublic | None = None
    evaluation_sent: bool = False
    last_send: float = field(default_factory=time.monotonic)


def read_snapshot(experiment_id: int, after_epoch: int) -> Snapshot | None:
    """One short-lived session per tick, so a long stream never holds a connection.

    The experiment is read first: once it reads as finished, the epochs and evaluation the
    worker committed before it are all visible to the reads that follow.
    """
    with get_sessionmaker()() as session:
        experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
        if experiment is None:
            return None
        public = ExperimentPublic.model_validate(experiment)
        public.queue_position = crud.queue_position(session=session, experiment=experiment)
        rows = crud.list_epochs(
            session=session, experiment_id=experiment_id, after_epoch=after_epoch
        )
        evaluation = experiment.evaluation
        return Snapshot(
            experiment=public,
            epochs=[EpochMetricPublic.model_validate(row) for row in rows],
            evaluation=None if evaluation is None else EvaluationPublic.model_validate(evaluation),
        )


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


def snapshot_events(snapshot: Snapshot, state: StreamState) -> list[str]:
    """The events this snapshot adds to what the client has: experiment, epochs, evaluation."""
    events = []
    if snapshot.experiment != state.experiment:
        state.experiment = snapshot.experiment
        events.append(format_event("experiment", snapshot.experiment.model_dump_json()))
    for epoch in snapshot.epochs:
        if epoch.epoch > state.last_epoch:
            state.last_epoch = epoch.epoch
            events.append(format_event("epoch", epoch.model_dump_json(), event_id=epoch.epoch))
    if snapshot.evaluation is not None and not state.evaluation_sent:
        state.evaluation_sent = True
        events.append(format_event("evaluation", snapshot.evaluation.model_dump_json()))
    return events


def _status(state: StreamState) -> str:
    return "" if state.experiment is None else state.experiment.status


def _is_finished(snapshot: Snapshot) -> bool:
    return snapshot.experiment.status.finished


async def _wait_for_next_tick(request: Request) -> bool:
    """Sleep one poll interval; False once the client has gone."""
    await asyncio.sleep(POLL_SECONDS)
    return not await request.is_disconnected()


async def event_stream(
    request: Request, experiment_id: int, first: Snapshot, state: StreamState
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    snapshot: Snapshot | None = first
    while snapshot is not None:
        events = snapshot_events(snapshot, state)
        if _is_finished(snapshot):
            yield "".join(events) + format_event("end", json.dumps({"status": _status(state)}))
            return
        now = time.monotonic()
        if events:
            state.last_send = now
            yield "".join(events)
        elif now - state.last_send >= PING_SECONDS:
            state.last_send = now
            yield ": ping\n\n"
        if not await _wait_for_next_tick(request):
            return
        snapshot = await run_in_threadpool(read_snapshot, experiment_id, state.last_epoch)


def open_viewer_stream(request: Request) -> str:
    """Signed in, or cifarlab runs open (else 401), and under the per-user limit of open
    streams (else 429): checked with a session of its own, so the stream that follows holds
    no database connection for its whole life. Returns the stream's id."""
    with get_sessionmaker()() as session:
        principal = viewer(request, session)
        who = "anonymous" if principal.user is None else f"user:{principal.user.id}"
        return quotas.open_stream(session, who)


def _in_session(action: Callable[[Session, str], None], stream_id: str) -> None:
    with get_sessionmaker()() as session:
        action(session, stream_id)


async def _closing(stream_id: str, events: AsyncIterator[str]) -> AsyncIterator[str]:
    """Renews the stream's row while it is open and removes it when it ends, however it
    ends (a client gone is a cancellation: the removal is shielded from it)."""
    renewed = time.monotonic()
    try:
        async for chunk in events:
            yield chunk
            if time.monotonic() - renewed >= quotas.STREAM_LEASE_SECONDS / 3:
                renewed = time.monotonic()
                await run_in_threadpool(_in_session, quotas.renew_stream, stream_id)
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_in_session, quotas.close_stream, stream_id)


def _resume_after(after_epoch: int, last_event_id: str | None) -> int:
    """A reconnecting browser sends the last epoch it got as Last-Event-ID; an id that is no
    epoch number (garbled, or past any epoch a column holds) is ignored, not an error."""
    text = (last_event_id or "").strip()
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= INTEGER_MAX:
        return max(after_epoch, int(text))
    return after_epoch


@router.get(
    "/experiments/{experiment_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def experiment_events(
    request: Request,
    experiment_id: RowId,
    after_epoch: Annotated[Count, Query(description="Send only epochs after this one.")] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Live updates as server-sent events: ``experiment`` (state changed, with its place in
    the queue while queued), ``epoch`` (one new row, ``id`` = its number), ``evaluation``,
    then ``end`` once the run has finished. 401 once accounts exist and nobody signed in;
    429 when the user has ``CIFARLAB_MAX_LIVE_STREAMS_PER_USER`` streams open already."""
    stream_id = await run_in_threadpool(open_viewer_stream, request)
    state = StreamState(last_epoch=_resume_after(after_epoch, last_event_id))
    first = await run_in_threadpool(read_snapshot, experiment_id, state.last_epoch)
    if first is None:
        await run_in_threadpool(_in_session, quotas.close_stream, stream_id)
        raise HTTPException(status_code=404, detail=f"experiment {experiment_id} does not exist")
    return StreamingResponse(
        _closing(stream_id, event_stream(request, experiment_id, first, state)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
