"""Server-sent events for the live experiment page, fed by polling the database.

The worker writes to the database only, so polling it works the same on SQLite and PostgreSQL
and needs no extra channel between worker and web. Each tick is one narrow statement
(``crud.read_live``: status, progress, new epoch rows); the whole experiment is read again only
when its status, attempt or model changes, and its evaluation once, when it appears. The
stream keeps every epoch row it has read, so the diagnostics it sends after each new epoch are
computed from those, never from a re-read of the run; once the evaluation has been read, they
read it too (a run that collapsed to one class shows there).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

import anyio
from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core import crud
from app.core.db import get_sessionmaker
from app.core.models import INTEGER_MAX, Status
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
from app.web.experiment_sections import (
    evaluation_images,
    evaluation_of,
    render_diagnostics,
    render_evaluation,
    run_outlook,
)

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)

POLL_SECONDS = 0.5
PING_SECONDS = 15.0
RECHECK_SECONDS = 5.0
"""How often an open stream asks again whether its viewer may still read: a stream lasts as
long as the run, and a token revoked or a user disabled meanwhile must not keep it."""
RETRY_MILLISECONDS = 2000


class ProgressEvent(BaseModel):
    """The ``progress`` event: how far the run is (or its place in the queue), what it is
    doing, about how long it has left and its resource readings (``Outlook``), sent whenever
    any of that moves, without the rest of the experiment."""

    current_epoch: int
    total_epochs: int
    epoch_progress: float
    queue_position: int | None
    phase: str = ""
    detail: str = ""
    remaining: str | None = None
    resources: list[str] = []


class ExperimentEvent(ExperimentPublic):
    """The ``experiment`` event: the whole experiment, and its progress in words as a
    ``progress`` event would carry it."""

    outlook: ProgressEvent


class SectionEvent(BaseModel):
    """The ``diagnostics`` and ``evaluation`` events: that section of the experiment page as a
    reload draws it, for the page to swap in without a request of its own."""

    html: str


@dataclass(frozen=True)
class LiveRun:
    """What diagnostics read of the experiment (``app.services.comparison.Run``)."""

    id: int
    status: Status
    total_epochs: int


Facts = tuple[Status, int, int | None]
"""Status, attempt and parameter count: when these change, the page redraws its facts."""


@dataclass(frozen=True)
class Tick:
    """One ``crud.read_live``: the experiment's state and the epochs after those held."""

    run: LiveRun
    facts: Facts
    progress: ProgressEvent
    run_phase: str | None
    telemetry: dict[str, Any] | None
    has_evaluation: bool
    epochs: list[EpochMetricPublic]


@dataclass
class StreamState:
    """What this client has been sent, so each tick sends only what changed; and every epoch
    row read so far, and the evaluation once read, for the diagnostics."""

    last_epoch: int
    epochs: list[EpochMetricPublic] = field(default_factory=list)
    evaluation: EvaluationPublic | None = None
    facts: Facts | None = None
    progress: ProgressEvent | None = None
    evaluation_images: int = 0
    evaluation_sent: bool = False
    finished: bool = False
    last_send: float = field(default_factory=time.monotonic)
    last_check: float = field(default_factory=time.monotonic)

    @property
    def read_after(self) -> int:
        return self.epochs[-1].epoch if self.epochs else 0


def read_tick(experiment_id: int, after_epoch: int) -> Tick | None:
    """One short-lived session per tick, so a long stream never holds a connection."""
    with get_sessionmaker()() as session:
        rows = crud.read_live(session=session, experiment_id=experiment_id, after_epoch=after_epoch)
    if not rows:
        return None
    first = rows[0]
    return Tick(
        run=LiveRun(id=experiment_id, status=first.status, total_epochs=first.total_epochs),
        facts=(first.status, first.attempts, first.parameters),
        progress=ProgressEvent(  # not from the row: its "phase" is the epoch row's
            current_epoch=first.current_epoch,
            total_epochs=first.total_epochs,
            epoch_progress=first.epoch_progress,
            queue_position=first.queue_position,
        ),  # fmt: skip
        run_phase=first.run_phase,
        telemetry=first.telemetry,
        has_evaluation=bool(first.has_evaluation),
        epochs=[EpochMetricPublic.model_validate(row) for row in rows if row.epoch is not None],
    )


class Details(NamedTuple):
    """The whole experiment, its evaluation and that section (both None before the
    evaluation)."""

    experiment: ExperimentPublic
    evaluation: EvaluationPublic | None
    evaluation_html: str | None


def read_details(experiment_id: int) -> Details | None:
    """Read when the facts change or the evaluation appears, not every tick."""
    with get_sessionmaker()() as session:
        experiment = crud.get_experiment_detail(session=session, experiment_id=experiment_id)
        if experiment is None:
            return None
        return Details(
            ExperimentPublic.model_validate(experiment),
            evaluation_of(experiment),
            render_evaluation(experiment),
        )


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    lines = [f"id: {event_id}"] if event_id is not None else []
    lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.splitlines() or [""])
    return "\n".join(lines) + "\n\n"


def with_outlook(
    progress: ProgressEvent, tick: Tick, epochs: list[EpochMetricPublic], state: StreamState
) -> ProgressEvent:
    """``progress`` with the run's phase, estimate and readings, from every epoch row the
    stream holds (those of this tick included)."""
    outlook = run_outlook(
        status=tick.run.status, run_phase=tick.run_phase, current_epoch=progress.current_epoch,
        total_epochs=progress.total_epochs, epoch_progress=progress.epoch_progress,
        epochs=epochs, evaluation_images=state.evaluation_images, telemetry=tick.telemetry,
    )  # fmt: skip
    return progress.model_copy(update=outlook.model_dump())


def tick_events(experiment_id: int, tick: Tick, state: StreamState) -> list[str] | None:
    """What this tick adds to what the client has: ``experiment`` (facts changed), then
    ``progress`` when it moved, new ``epoch`` rows, ``diagnostics`` after new epochs and at
    the end, then ``evaluation`` once. None when the experiment is gone."""
    events = []
    evaluation_html = None
    wants_evaluation = tick.has_evaluation and not state.evaluation_sent
    facts_changed = tick.facts != state.facts
    if facts_changed or wants_evaluation:
        details = read_details(experiment_id)
        if details is None:
            return None
        experiment, evaluation, evaluation_html = details
        state.evaluation = evaluation or state.evaluation
        if facts_changed:
            state.facts = tick.facts
            state.evaluation_images = evaluation_images(experiment.spec)
            experiment.queue_position = tick.progress.queue_position
            # The page takes its progress from this (read after the tick, so maybe newer).
            base = ProgressEvent.model_validate(experiment, from_attributes=True)
            state.progress = with_outlook(base, tick, [*state.epochs, *tick.epochs], state)
            sent = ExperimentEvent(**experiment.model_dump(), outlook=state.progress)
            events.append(format_event("experiment", sent.model_dump_json()))
    progress = with_outlook(tick.progress, tick, [*state.epochs, *tick.epochs], state)
    if not facts_changed and progress != state.progress:
        state.progress = progress
        events.append(format_event("progress", progress.model_dump_json()))
    sent_epoch = False
    for epoch in tick.epochs:
        state.epochs.append(epoch)
        if epoch.epoch > state.last_epoch:
            state.last_epoch = epoch.epoch
            sent_epoch = True
            events.append(format_event("epoch", epoch.model_dump_json(), event_id=epoch.epoch))
    state.finished = tick.run.status.finished
    if sent_epoch or state.finished:
        section = SectionEvent(html=render_diagnostics(tick.run, state.epochs, state.evaluation))
        events.append(format_event("diagnostics", section.model_dump_json()))
    if wants_evaluation and evaluation_html is not None:
        state.evaluation_sent = True
        section = SectionEvent(html=evaluation_html)
        events.append(format_event("evaluation", section.model_dump_json()))
    return events


def poll(experiment_id: int, state: StreamState) -> list[str] | None:
    """One tick, in a worker thread (it reads and renders): None once the experiment is gone."""
    tick = read_tick(experiment_id, state.read_after)
    return None if tick is None else tick_events(experiment_id, tick, state)


def _status(state: StreamState) -> str:
    return "" if state.facts is None else state.facts[0]


async def _wait_for_next_tick(request: Request) -> bool:
    """Sleep one poll interval; False once the client has gone."""
    await asyncio.sleep(POLL_SECONDS)
    return not await request.is_disconnected()


async def event_stream(
    request: Request, experiment_id: int, first: list[str], state: StreamState
) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    events: list[str] | None = first
    while events is not None:
        if state.finished:
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
        if now - state.last_check >= RECHECK_SECONDS:
            state.last_check = now
            if not await run_in_threadpool(may_still_read, request):
                return  # the browser's reconnect then gets the 401 and stops
        events = await run_in_threadpool(poll, experiment_id, state)


def may_still_read(request: Request) -> bool:
    """Whether the stream's viewer would still be let in: the token or browser session it
    opened with is still good and its user not disabled (or cifarlab runs open)."""
    with get_sessionmaker()() as session:
        try:
            viewer(request, session)
        except HTTPException:
            return False
    return True


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
    """Live updates as server-sent events, each ``data`` one JSON object:

    - ``experiment``: the whole experiment (as GET /api/experiments/{id}) when its status,
      attempt or model changes, and first, with ``outlook``: its progress as a ``progress``
      event carries it;
    - ``progress``: ``{"current_epoch", "total_epochs", "epoch_progress", "queue_position",
      "phase", "detail", "remaining", "resources"}`` whenever it moves
      (``phase`` in words, "epoch 3/20" or "evaluating"; ``remaining`` "about 4 min left" or
      null; ``resources`` the last heartbeat's CPU, memory and GPU readings, one line each);
    - ``epoch``: one new epoch row (as in GET /api/experiments/{id}/metrics), ``id`` = its
      number;
    - ``diagnostics``: ``{"html"}``, the page's diagnostics section, after new epochs and at
      the end;
    - ``evaluation``: ``{"html"}``, the page's evaluation section, once;
    - ``end``: ``{"status"}`` once the run has finished; the stream closes.

    401 once accounts exist and nobody signed in; 429 when the user has
    ``CIFARLAB_MAX_LIVE_STREAMS_PER_USER`` streams open already. The stream closes within
    seconds of its token being revoked, its session ended or its user disabled."""
    stream_id = await run_in_threadpool(open_viewer_stream, request)
    state = StreamState(last_epoch=_resume_after(after_epoch, last_event_id))
    first = await run_in_threadpool(poll, experiment_id, state)
    if first is None:
        await run_in_threadpool(_in_session, quotas.close_stream, stream_id)
        raise HTTPException(status_code=404, detail=f"experiment {experiment_id} does not exist")
    return StreamingResponse(
        _closing(stream_id, event_stream(request, experiment_id, first, state)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
