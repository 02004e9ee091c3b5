"""The sweep pages: the list of sweeps, one sweep's page (progress, best trial, parallel
coordinates, a scatter per varied hyperparameter, the trial table), the JSON it polls while
trials are unfinished, and its Cancel and Retry forms.

Everything is read through ``app.services.sweeps.view`` (three queries, whatever the number of
trials); ``app.web.sweep_charts`` draws it. The live JSON carries the counts, each trial's
changing cells and the figures, not HTML: the table keeps its sort and selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from app.core import crud
from app.core.models import Status
from app.core.schemas import RowId
from app.services import sweeps
from app.services.errors import Conflict, NotFound
from app.services.retry import RETRYABLE
from app.services.sweeps import SweepView, TrialView
from app.web import json_text
from app.web.deps import SessionDep, SweepCacheDep
from app.web.formatting import format_number, format_percent
from app.web.forms import shown_value
from app.web.security_headers import WEBGL_CHARTS_POLICY
from app.web.sweep_charts import metric_title, rounded, sweep_figures
from app.web.templating import (
    FRAGMENT_VIEWER,
    SIGNED_IN,
    PageViewerDep,
    error_page,
    not_found,
    page_router,
    templates,
)

router = page_router()
POLL_MILLISECONDS = 2000
LIST_LIMIT = 100
PROGRESS = (
    ("queued", "Queued", (Status.queued,)),
    ("running", "Running", (Status.running,)),
    ("done", "Done", (Status.succeeded,)),
    ("pruned", "Pruned", (Status.pruned,)),
    ("failed", "Failed or cancelled", (Status.failed, Status.cancelled)),
)
"""The page's progress buckets, in the order a sweep moves through them."""


def progress(counts: dict[Status, int]) -> dict[str, int]:
    return {key: sum(counts.get(s, 0) for s in statuses) for key, _, statuses in PROGRESS}


def eta_words(seconds: float | None, unfinished: int) -> str:
    """The ETA as a person says it: rounded, never to the second."""
    if not unfinished:
        return "all trials finished"
    if seconds is None:
        return "known once a trial finishes"
    minutes = round(seconds / 60)
    if seconds < 60:
        return "under a minute"
    if minutes < 60:
        return f"about {minutes} minute{'' if minutes == 1 else 's'}"
    hours, rest = divmod(minutes, 60)
    return f"about {hours} h {rest:02d} min"


def _value_text(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else shown_value(value)


def _sort_value(value: Any) -> str:
    """Numbers sort as numbers in sweep.js (it compares ``data-sort`` numerically when both
    sides parse), everything else as text."""
    if isinstance(value, bool) or value is None:
        return shown_value(value)
    return repr(value) if isinstance(value, int | float) else str(value)


def trial_cells(trial: TrialView) -> dict[str, Any]:
    """A trial's changing values, as the live poll sends them: numbers, not text, to keep a
    1,000-trial poll small; sweep.js words them as ``shown_cells`` does for the page."""
    return {
        "id": trial.id,
        "status": str(trial.status),
        "epoch": trial.current_epoch,
        "epochs": trial.total_epochs,
        "best": rounded(trial.best_metric),
        "test": rounded(trial.test_accuracy),
        "note": trial.stop_reason or trial.error or "",
    }


def shown_cells(cells: dict[str, Any]) -> dict[str, str]:
    """The table's text for ``trial_cells``; mirrored by ``cellText`` in sweep.js."""
    return {
        "epoch": f"{cells['epoch']}/{cells['epochs']}" if cells["epochs"] else "—",
        "best": format_number(cells["best"], 4),
        "test": "" if cells["test"] is None else format_percent(cells["test"]),
    }


def _best(view: SweepView) -> dict[str, Any] | None:
    if view.best is None:
        return None
    return {
        "id": view.best.id,
        "name": view.best.name,
        "metric": format_number(view.best.best_metric, 4),
        "test": "" if view.best.test_accuracy is None else format_percent(view.best.test_accuracy),
    }


def _compare_urls(trials: Sequence[TrialView]) -> dict[str, str] | None:
    """The seed-group comparison of every succeeded trial, once there are two to compare."""
    done = [str(t.id) for t in trials if t.status is Status.succeeded]
    if len(done) < 2:
        return None
    return {"groups": "/compare?" + urlencode({"ids": ",".join(done), "group": "seed"})}


def live_data(view: SweepView) -> dict[str, Any]:
    """What the page script draws: embedded in the page, then from each poll."""
    unfinished = sum(not t.status.finished for t in view.trials)
    return {
        "active": unfinished > 0,
        "counts": progress(view.counts),
        "total": len(view.trials),
        "eta": eta_words(view.eta_seconds, unfinished),
        "best": _best(view),
        "compare": _compare_urls(view.trials),
        "canRetry": any(t.status in RETRYABLE for t in view.trials),
        "trials": [trial_cells(t) for t in view.trials],
        "figures": sweep_figures(view.sweep.id, view.spec, view.trials),
    }


def _sort_number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def sweep_context(view: SweepView) -> dict[str, Any]:
    """The page's context for every viewer (who may cancel is added per request); the trial
    rows come rendered (``rows_html``): at 1,000 trials they are most of the page's work."""
    data = live_data(view)
    columns = [*view.spec.varied, "seed"]
    rows = [
        {
            "trial": trial,
            "cells": cells,
            "text": shown_cells(cells),
            "sort": {key: _sort_number(cells[key]) for key in ("epoch", "best", "test")},
            "point": [
                (_value_text(trial.point.get(c)), _sort_value(trial.point.get(c))) for c in columns
            ],
        }  # fmt: skip
        for trial, cells in zip(view.trials, data["trials"], strict=True)
    ]
    return {
        "sweep": view.sweep,
        "spec": view.spec,
        "metric_title": metric_title(view.spec),
        "progress": [(key, label, data["counts"][key]) for key, label, _ in PROGRESS],
        "data": data,
        "columns": columns,
        "log_axes": [name for name in view.spec.varied if view.spec.log_scaled(name)],
        "rows_html": Markup(templates.get_template("_sweep_rows.html").render(rows=rows)),
        "page_data_json": htmlsafe_json_dumps(
            dumps=json_text.dumps,
            obj={
                # the table is drawn already: its cells come with the first poll
                **{key: value for key, value in data.items() if key != "trials"},
                "liveUrl": f"/sweeps/{view.sweep.id}/live",
                "metricTitle": metric_title(view.spec),
                "pollMilliseconds": POLL_MILLISECONDS,
            },
        ),
    }


@router.get("/sweeps", dependencies=SIGNED_IN)
def sweeps_page(request: Request, session: SessionDep) -> Response:
    """The newest sweeps with their trials' progress, counted in one grouped query."""
    rows, total = crud.list_sweeps(session=session, limit=LIST_LIMIT)
    counts = crud.sweep_status_counts(session=session, sweep_ids=[s.id for s in rows])
    listed = [
        {"sweep": s, "progress": progress(counts[s.id]), "total": sum(counts[s.id].values())}
        for s in rows
    ]
    context = {"sweeps": listed, "total": total, "progress_labels": PROGRESS}
    return templates.TemplateResponse(request, "sweeps.html", context)


@router.get("/sweeps/{sweep_id}")
def sweep_page(
    request: Request,
    session: SessionDep,
    cache: SweepCacheDep,
    principal: PageViewerDep,
    sweep_id: RowId,
) -> Response:
    """Cancel and Retry are drawn for the sweep's owner or an admin only. The parallel
    coordinates need WebGL, hence this page's own policy (``WEBGL_CHARTS_POLICY``)."""
    try:
        cached = cache.get(session, sweep_id)
    except NotFound as exc:
        return not_found(request, str(exc))
    context = {
        **cached.part("page", sweep_context),
        "can_modify": principal.can_modify(cached.view.sweep),
    }
    response = templates.TemplateResponse(request, "sweep.html", context)
    response.headers["Content-Security-Policy"] = WEBGL_CHARTS_POLICY
    return response


@router.get("/sweeps/{sweep_id}/live", dependencies=FRAGMENT_VIEWER)
def sweep_live(session: SessionDep, cache: SweepCacheDep, sweep_id: RowId) -> Response:
    """What the page polls every two seconds while a trial is queued or running: the same
    bytes for every viewer until the sweep changes."""
    body = cache.get(session, sweep_id).part("live", lambda view: json_text.encode(live_data(view)))
    return Response(body, media_type="application/json")


def _act(
    request: Request, session: SessionDep, principal: PageViewerDep, sweep_id: int, retry: bool
) -> Response:
    try:
        sweep = sweeps.get(session, sweep_id)
    except NotFound as exc:
        return not_found(request, str(exc))
    if not principal.can_modify(sweep):
        return error_page(request, 403, "Only the sweep's owner or an admin may change it.")
    try:
        sweeps.retry_failed(session, sweep) if retry else sweeps.cancel_sweep(session, sweep)
    except Conflict as exc:
        return error_page(request, 409, str(exc))
    return RedirectResponse(f"/sweeps/{sweep_id}", status_code=303)


@router.post("/sweeps/{sweep_id}/cancel")
def cancel_sweep(
    request: Request, session: SessionDep, principal: PageViewerDep, sweep_id: RowId
) -> Response:
    """Cancels every queued and running trial; finished ones keep their results."""
    return _act(request, session, principal, sweep_id, retry=False)


@router.post("/sweeps/{sweep_id}/retry")
def retry_sweep(
    request: Request, session: SessionDep, principal: PageViewerDep, sweep_id: RowId
) -> Response:
    """Queues the failed and cancelled trials again, under the sweep's cap."""
    return _act(request, session, principal, sweep_id, retry=True)
