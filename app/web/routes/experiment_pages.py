"""One experiment's page (trained or imported) and the fragments its script swaps in: the
evaluation when training ends, the diagnostics after each epoch."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from app.core import crud
from app.core.crud import EpochRow
from app.core.models import Experiment, Status
from app.core.schemas import EpochMetricPublic, EvaluationPublic, ExperimentPublic, RowId
from app.services.comparison import diagnostics
from app.web.charts import (
    boundary_marks,
    confusion_matrix_figure,
    curves_figure,
    fine_tune_start,
    gap_figure,
    has_gallery,
    learning_rate_figure,
    report_rows,
    with_boundary,
    with_export_name,
)
from app.web.deps import SessionDep
from app.web.forms import spec_groups, study_preset
from app.web.presentation import diagnosis_public
from app.web.templating import FRAGMENT_VIEWER, PageViewerDep, not_found, page_router, templates

router = page_router()


def evaluation_context(
    evaluation: EvaluationPublic | None, experiment: Experiment | None = None
) -> dict[str, Any]:
    """An imported report may come without its confusion matrix: then the table stands alone.
    With per-image predictions, the matrix's cells open the misclassified gallery."""
    if evaluation is None:
        return {"evaluation": None}
    matrix = evaluation.confusion_matrix
    figure = None if matrix is None else confusion_matrix_figure(evaluation.classes, matrix)
    if figure is not None and experiment is not None:
        with_export_name(figure, f"cifarlab-experiment-{experiment.id}-confusion-matrix")
    gallery = None
    if experiment is not None and has_gallery(experiment):
        gallery = {"id": experiment.id, "name": experiment.name}
    return {
        "evaluation": evaluation,
        "confusion_figure": figure,
        "report_rows": report_rows(evaluation.report, evaluation.classes),
        "gallery": gallery,
    }


def _evaluation_of(experiment: Experiment) -> EvaluationPublic | None:
    if experiment.evaluation is None:
        return None
    return EvaluationPublic.model_validate(experiment.evaluation)


def mean_and_last(values: Sequence[float | None]) -> tuple[float, float] | None:
    known = [value for value in values if value is not None]
    return (statistics.fmean(known), known[-1]) if known else None


def _figures(
    experiment_id: int, epochs: Sequence[EpochMetricPublic], total: int | None
) -> dict[str, Any]:
    start = fine_tune_start(epochs)
    figures = {
        "accuracy": curves_figure(epochs, "accuracy", total_epochs=total),
        "loss": curves_figure(epochs, "loss", total_epochs=total),
        "learning_rate": learning_rate_figure(epochs, total),
    }
    return {
        f"{name}_figure": with_export_name(
            with_boundary(figure, start), f"cifarlab-experiment-{experiment_id}-{name}"
        )
        for name, figure in figures.items()
    }


def diagnostics_context(experiment: Experiment, rows: Sequence[EpochRow]) -> dict[str, Any]:
    """The curves read in words (``app.services.diagnostics``) beside the generalization gap
    chart."""
    diagnosis = diagnosis_public(diagnostics(experiment, rows), len(rows))
    figure = gap_figure(
        diagnosis.generalization_gap,
        diagnosis.best_epoch,
        total_epochs=experiment.total_epochs or None,
    )
    return {
        "diagnosis": diagnosis,
        "gap_figure": with_export_name(figure, f"cifarlab-experiment-{experiment.id}-gap"),
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
        "hasEvaluation": has_evaluation,
        "eventsUrl": f"/experiments/{experiment.id}/events?after_epoch={last_epoch}",
        "evaluationUrl": f"/experiments/{experiment.id}/evaluation",
        "diagnosticsUrl": f"/experiments/{experiment.id}/diagnostics",
    }


def _imported_page(request: Request, experiment: Experiment, can_modify: bool) -> Response:
    """A pasted report has no run behind it: no progress, curves or model, just the report."""
    context = {
        "experiment": ExperimentPublic.model_validate(experiment),
        "can_modify": can_modify,
        **evaluation_context(_evaluation_of(experiment), experiment),
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
    evaluation = _evaluation_of(experiment)
    context = {
        "experiment": public,
        "can_modify": can_modify,
        "spec_groups": spec_groups(public.model, public.spec.get("hyperparameters", {})),
        "study": study_preset(public.tags),
        "seconds_per_epoch": mean_and_last([row.seconds for row in epochs]),
        "images_per_second": mean_and_last([row.images_per_second for row in epochs]),
        "page_data": _page_data(public, epochs, evaluation is not None),
        **_figures(experiment_id, epochs, public.total_epochs or None),
        **diagnostics_context(experiment, rows),
        **evaluation_context(evaluation, experiment),
    }
    return templates.TemplateResponse(request, "experiment.html", context)


@router.get("/experiments/{experiment_id}/evaluation", dependencies=FRAGMENT_VIEWER)
def evaluation_panel(request: Request, session: SessionDep, experiment_id: RowId) -> Response:
    """The evaluation section alone: the live page swaps it in when training ends, so the
    table and heatmap have one rendering path."""
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    evaluation = None if experiment is None else _evaluation_of(experiment)
    if evaluation is None:
        return HTMLResponse('<p class="muted">No evaluation yet.</p>', status_code=404)
    context = evaluation_context(evaluation, experiment)
    return templates.TemplateResponse(request, "_evaluation.html", context)


@router.get("/experiments/{experiment_id}/diagnostics", dependencies=FRAGMENT_VIEWER)
def diagnostics_panel(request: Request, session: SessionDep, experiment_id: RowId) -> Response:
    """The diagnostics section alone: the live page swaps it in after each epoch and at the
    end, when "so far" becomes the final verdict."""
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    if experiment is None:
        return HTMLResponse('<p class="muted">No such experiment.</p>', status_code=404)
    rows = crud.list_epochs(session=session, experiment_id=experiment_id)
    context = diagnostics_context(experiment, rows)
    return templates.TemplateResponse(request, "_diagnostics.html", context)
