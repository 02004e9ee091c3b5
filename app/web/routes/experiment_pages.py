"""One experiment's page (trained or imported) and the fragments its script swaps in: the
evaluation when training ends, the diagnostics after each epoch."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from app.core import crud
from app.core.cli_command import launch_command
from app.core.config import get_settings
from app.core.models import Experiment, Status
from app.core.run_log import TAIL_LINES, run_log_path, tail
from app.core.schemas import EpochMetricPublic, ExperimentPublic, RowId
from app.services.workers import online as online_workers
from app.web.charts import (
    LIVE_TRACES,
    NO_EPOCHS,
    boundary_marks,
    curves_figure,
    fine_tune_start,
    learning_rate_figure,
    mark_no_epochs,
    with_boundary,
    with_export_name,
    with_metrics_url,
)
from app.web.deps import SessionDep
from app.web.experiment_sections import (
    diagnostics_context,
    evaluation_context,
    evaluation_images,
    evaluation_of,
    render_diagnostics,
    render_evaluation,
    run_outlook,
)
from app.web.forms import spec_groups, study_preset
from app.web.templating import FRAGMENT_VIEWER, PageViewerDep, not_found, page_router, templates

router = page_router()

LOG_POLL_MILLISECONDS = 3000
"""How often a live page fetches its run's log tail."""


def mean_and_last(values: Sequence[float | None]) -> tuple[float, float] | None:
    known = [value for value in values if value is not None]
    return (statistics.fmean(known), known[-1]) if known else None


def _figures(experiment: ExperimentPublic, epochs: Sequence[EpochMetricPublic]) -> dict[str, Any]:
    experiment_id, total = experiment.id, experiment.total_epochs or None
    start = fine_tune_start(epochs)
    metrics_url = f"/api/experiments/{experiment_id}/metrics"
    figures = {
        "accuracy": curves_figure(epochs, "accuracy", total_epochs=total),
        "loss": curves_figure(epochs, "loss", total_epochs=total),
        "learning_rate": learning_rate_figure(epochs, total),
    }
    if experiment.status.finished:
        figures = {name: mark_no_epochs(figure) for name, figure in figures.items()}
    return {
        f"{name}_figure": with_export_name(
            with_metrics_url(with_boundary(figure, start), metrics_url),
            f"cifarlab-experiment-{experiment_id}-{name}",
        )
        for name, figure in figures.items()
    }


def _page_data(
    experiment: ExperimentPublic, epochs: Sequence[EpochMetricPublic], has_evaluation: bool
) -> dict[str, Any]:
    """What the page script needs to pick the live stream up where the page left off."""
    last_epoch = epochs[-1].epoch if epochs else 0
    return {
        "id": experiment.id,
        "finished": experiment.status.finished,
        "lastEpoch": last_epoch,
        "lastPhase": epochs[-1].phase if epochs else None,
        "seconds": [row.seconds for row in epochs],
        "imagesPerSecond": [row.images_per_second for row in epochs],
        "boundaryMarks": boundary_marks(0),
        "noEpochsNote": NO_EPOCHS,
        "hasEvaluation": has_evaluation,
        "eventsUrl": f"/experiments/{experiment.id}/events?after_epoch={last_epoch}",
        "logUrl": f"/experiments/{experiment.id}/log",
        "logPollMilliseconds": LOG_POLL_MILLISECONDS,
        "traces": {f"{chart.replace('_', '-')}-chart": keys for chart, keys in LIVE_TRACES.items()},
    }


def _imported_page(request: Request, experiment: Experiment, can_modify: bool) -> Response:
    """A pasted report has no run behind it: no progress, curves or model, just the report."""
    context = {
        "experiment": ExperimentPublic.model_validate(experiment),
        "can_modify": can_modify,
        **evaluation_context(evaluation_of(experiment), experiment),
    }
    return templates.TemplateResponse(request, "imported.html", context)


@router.get("/experiments/{experiment_id}")
def experiment_page(
    request: Request, session: SessionDep, principal: PageViewerDep, experiment_id: RowId
) -> Response:
    """Cancel, Retry, Delete and the notes editor are drawn for the owner or an admin only
    (the API refuses anyone else all the same)."""
    experiment = crud.get_experiment_detail(session=session, experiment_id=experiment_id)
    if experiment is None:
        return not_found(request, f"Experiment {experiment_id} does not exist.")
    can_modify = principal.can_modify(experiment)
    if experiment.status == Status.imported:
        return _imported_page(request, experiment, can_modify)
    public = ExperimentPublic.model_validate(experiment)
    public.queue_position = crud.queue_position(session=session, experiment=experiment)
    rows = crud.list_epochs(session=session, experiment_id=experiment_id)
    epochs = [EpochMetricPublic.model_validate(row) for row in rows]
    evaluation = evaluation_of(experiment)
    outlook = run_outlook(
        status=public.status, run_phase=public.run_phase, current_epoch=public.current_epoch,
        total_epochs=public.total_epochs, epoch_progress=public.epoch_progress, epochs=epochs,
        evaluation_images=evaluation_images(public.spec), telemetry=public.telemetry,
    )  # fmt: skip
    context = {
        "experiment": public,
        "outlook": outlook,
        "cli_command": launch_command(public.spec),
        "log_lines": tail(run_log_path(get_settings(), experiment_id)),
        "log_tail_lines": TAIL_LINES,
        "can_modify": can_modify,
        # a queued run with no worker to start it (a dashboard-only install, all stopped)
        "no_worker_online": public.queue_position is not None and not online_workers(session),
        "spec_groups": spec_groups(public.model, public.spec.get("hyperparameters", {})),
        "study": study_preset(public.tags),
        "seconds_per_epoch": mean_and_last([row.seconds for row in epochs]),
        "images_per_second": mean_and_last([row.images_per_second for row in epochs]),
        "page_data": _page_data(public, epochs, evaluation is not None),
        **_figures(public, epochs),
        **diagnostics_context(experiment, rows, evaluation),
        **evaluation_context(evaluation, experiment),
    }
    return templates.TemplateResponse(request, "experiment.html", context)


@router.get("/experiments/{experiment_id}/evaluation", dependencies=FRAGMENT_VIEWER)
def evaluation_panel(session: SessionDep, experiment_id: RowId) -> Response:
    """The evaluation section alone, as the live stream's ``evaluation`` event carries it."""
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    html = None if experiment is None else render_evaluation(experiment)
    if html is None:
        return HTMLResponse('<p class="muted">No evaluation yet.</p>', status_code=404)
    return HTMLResponse(html)


@router.get("/experiments/{experiment_id}/diagnostics", dependencies=FRAGMENT_VIEWER)
def diagnostics_panel(session: SessionDep, experiment_id: RowId) -> Response:
    """The diagnostics section alone, as the live stream's ``diagnostics`` event carries it."""
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    if experiment is None:
        return HTMLResponse('<p class="muted">No such experiment.</p>', status_code=404)
    rows = crud.list_epochs(session=session, experiment_id=experiment_id)
    return HTMLResponse(render_diagnostics(experiment, rows, experiment.evaluation))


@router.get("/experiments/{experiment_id}/log", dependencies=FRAGMENT_VIEWER)
def run_log_tail(session: SessionDep, experiment_id: RowId) -> Response:
    """The last lines of the run's own log (``app.core.run_log``) as plain text, which the page
    puts in as text (never markup); who may see the page may see its log."""
    if crud.get_experiment(session=session, experiment_id=experiment_id) is None:
        return PlainTextResponse(f"Experiment {experiment_id} does not exist.", status_code=404)
    lines = tail(run_log_path(get_settings(), experiment_id))
    return PlainTextResponse("\n".join(lines), headers={"Cache-Control": "no-store"})
