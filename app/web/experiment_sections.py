"""The experiment page's two sections that change when a run ends: the evaluation (report,
confusion matrix, gallery link) and the diagnostics (the curves in words, the gap chart).

The page draws them, the live stream sends them (``app.web.routes.events``) and the fragment
routes serve them; all three render here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from app.core.crud import EpochRow
from app.core.hyperparameters import TEST_TIME_VIEWS
from app.core.models import Experiment, Status
from app.core.run_phase import (
    TRAINING_PHASES,
    TimedEpoch,
    describe_phase,
    describe_remaining,
    remaining_seconds,
)
from app.core.schemas import EpochMetricPublic, EvaluationPublic
from app.core.telemetry import describe_telemetry
from app.core.time_to_accuracy import time_to_accuracy
from app.services.comparison import Run, Scored, diagnostics
from app.web.charts import (
    confusion_matrix_figure,
    gap_figure,
    has_gallery,
    mark_no_epochs,
    report_rows,
    with_export_name,
)
from app.web.presentation import diagnosis_public
from app.web.templating import templates


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


def evaluation_of(experiment: Experiment) -> EvaluationPublic | None:
    if experiment.evaluation is None:
        return None
    return EvaluationPublic.model_validate(experiment.evaluation)


def diagnostics_context(
    experiment: Run, rows: Sequence[EpochRow | EpochMetricPublic], evaluation: Scored | None
) -> dict[str, Any]:
    """The curves read in words (``app.services.diagnostics``) beside the generalization gap
    chart, and the training time each validation accuracy threshold took; with the
    evaluation, once there is one."""
    diagnosis = diagnosis_public(diagnostics(experiment, rows, evaluation), len(rows))
    figure = gap_figure(
        diagnosis.generalization_gap,
        diagnosis.best_epoch,
        total_epochs=experiment.total_epochs or None,
    )
    if experiment.status.finished:
        figure = mark_no_epochs(figure)
    return {
        "diagnosis": diagnosis,
        "gap_figure": with_export_name(figure, f"cifarlab-experiment-{experiment.id}-gap"),
        "time_to_accuracy": time_to_accuracy(rows),
    }


def render_diagnostics(
    experiment: Run, rows: Sequence[EpochRow | EpochMetricPublic], evaluation: Scored | None
) -> str:
    """The diagnostics section as its page draws it; the live stream sends it after each new
    epoch and at the end, from the rows (and the evaluation) it holds."""
    context = diagnostics_context(experiment, rows, evaluation)
    return templates.env.get_template("_diagnostics.html").render(context)


def render_evaluation(experiment: Experiment) -> str | None:
    """The evaluation section as its page draws it (None before there is one); the live
    stream sends it once the run has been evaluated."""
    evaluation = evaluation_of(experiment)
    if evaluation is None:
        return None
    context = evaluation_context(evaluation, experiment)
    return templates.env.get_template("_evaluation.html").render(context)


class Outlook(BaseModel):
    """The progress card's words: the phase ("epoch 3/20", "evaluating"), about how long is
    left once an epoch of the phase has ended, and the last heartbeat's CPU, memory and GPU
    readings while the run lasts. The page draws it and the live stream's ``progress`` events
    carry it, from the same function."""

    phase: str
    detail: str = ""
    remaining: str | None = None
    resources: list[str] = []


def evaluation_images(spec: dict[str, Any]) -> int:
    """Test images the evaluation predicts: the test set once per test-time view."""
    hyperparameters = spec.get("hyperparameters") or {}
    images = int(hyperparameters.get("test_size") or 0)
    return images * TEST_TIME_VIEWS.get(str(hyperparameters.get("test_time_augmentation")), 1)


def run_outlook(
    *,
    status: Status,
    run_phase: str | None,
    current_epoch: int,
    total_epochs: int,
    epoch_progress: float,
    epochs: Sequence[TimedEpoch],
    evaluation_images: int,
    telemetry: dict[str, Any] | None,
) -> Outlook:
    running = status == Status.running
    done = current_epoch - 1 + epoch_progress if current_epoch > 0 else 0.0
    overall = (
        1.0
        if status == Status.succeeded
        else min(done / total_epochs, 1.0)
        if total_epochs
        else 0.0
    )
    if running and run_phase in TRAINING_PHASES:
        detail = f"{round(epoch_progress * 100)}% of this epoch · {round(overall * 100)}% overall"
    else:
        completed = current_epoch if epoch_progress >= 1 else max(current_epoch - 1, 0)
        detail = f"{completed}/{total_epochs} epochs · {round(overall * 100)}% overall"
    seconds = remaining_seconds(
        status=status, run_phase=run_phase, epochs=epochs, current_epoch=current_epoch,
        epoch_progress=epoch_progress, total_epochs=total_epochs,
        evaluation_images=evaluation_images,
    )  # fmt: skip
    return Outlook(
        phase=describe_phase(
            status=status,
            run_phase=run_phase,
            current_epoch=current_epoch,
            total_epochs=total_epochs,
        ),  # fmt: skip
        detail=detail,
        remaining=describe_remaining(seconds),
        resources=describe_telemetry(telemetry) if running else [],
    )
