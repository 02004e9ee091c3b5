"""HTML pages: the experiments list, the launch form with its presets, and the live
experiment page.

Pages read the database only. The form itself is built in ``app.forms``; this module holds
the routes and what each page needs from the database.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app import crud
from app.charts import confusion_matrix_figure, curves_figure, report_rows
from app.deps import SessionDep
from app.forms import (
    form_context,
    preset_sections,
    spec_from_form,
    spec_groups,
    study_preset,
    values_from_spec,
)
from app.launcher import launch
from app.models import Experiment, Status
from app.presets import PRESETS
from app.schemas import (
    EpochMetricPublic,
    EvaluationPublic,
    ExperimentPublic,
    FieldError,
    SpecError,
)
from app.zoo import MODELS

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PLOTLY_JS_URL = "/static/vendor/plotly.min.js"
PAGE_SIZE = 25
FINE_TUNE = "fine_tune"
BOUNDARY_COLOR = "#667085"
LEARNING_RATE_COLOR = "#7c3aed"


# --- formatting -------------------------------------------------------------------------------


def format_datetime(value: datetime | None) -> str:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f}%"


def format_number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def format_compact(value: int | None) -> str:
    """Parameter counts in a list column: 550.6k, 23.6M (the exact count is in its title)."""
    if value is None:
        return "—"
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return str(value)


def format_mean_last(pair: tuple[float, float] | None, digits: int, unit: str = "") -> str:
    """The mean over epochs and the last epoch's value: the first epoch pays for tracing,
    so the last one says what the run does now. Mirrored in experiment.js."""
    if pair is None:
        return "—"
    mean, last = (f"{value:,.{digits}f}{unit}" for value in pair)
    return f"{mean} mean · {last} last"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True
    )
    env.filters.update(
        datetime=format_datetime,
        duration=format_duration,
        percent=format_percent,
        number=format_number,
        compact=format_compact,
        mean_last=format_mean_last,
    )
    env.globals.update(plotly_js_url=PLOTLY_JS_URL, statuses=list(Status), models=MODELS)
    return env


templates = Jinja2Templates(env=_environment())


def _not_found(request: Request, message: str) -> Response:
    return templates.TemplateResponse(request, "404.html", {"message": message}, status_code=404)


# --- plotly.js, from the installed plotly package ----------------------------------------------


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


@router.get(PLOTLY_JS_URL)
def plotly_js(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """Served, not copied into the repo and never from a CDN: pages work offline."""
    path, etag = _plotly_js()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="text/javascript", headers=headers)


# --- the experiments list ----------------------------------------------------------------------


def _page_url(filters: dict[str, str], page: int) -> str:
    query = {key: value for key, value in filters.items() if value}
    if page > 1:
        query["page"] = str(page)
    return "/?" + urlencode(query) if query else "/"


@router.get("/")
def experiments_page(
    request: Request,
    session: SessionDep,
    status: str = "",
    model: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    page = max(page, 1)
    items, total = crud.list_experiments(
        session=session,
        status=status or None,
        model=model or None,
        q=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    filters = {"status": status, "model": model, "q": q}
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "experiments": items,
        "total": total,
        "filters": filters,
        "page": page,
        "previous_url": _page_url(filters, page - 1) if page > 1 else None,
        "next_url": _page_url(filters, page + 1) if page < pages else None,
        "pages": pages,
    }
    return templates.TemplateResponse(request, "experiments.html", context)


# --- the launch form and its presets ----------------------------------------------------------


def _render_form(
    request: Request,
    values: dict[str, str],
    errors: list[FieldError] | None = None,
    status_code: int = 200,
    prefilled_from: str = "",
) -> Response:
    """The presets collapse once the form holds a chosen spec, so the form is in view."""
    context = {
        **form_context(values, errors or []),
        "preset_sections": preset_sections(),
        "prefilled_from": prefilled_from,
    }
    return templates.TemplateResponse(request, "new.html", context, status_code=status_code)


@router.get("/experiments/new")
def new_experiment_page(
    request: Request,
    session: SessionDep,
    source_id: Annotated[int | None, Query(alias="from")] = None,
    preset_name: Annotated[str | None, Query(alias="preset")] = None,
) -> Response:
    """``?from=ID`` prefills the form with that experiment's spec (clone and tweak),
    ``?preset=NAME`` with a preset's (customise before launching)."""
    if preset_name is not None:
        preset = PRESETS.get(preset_name)
        if preset is None:
            return _not_found(request, f"There is no preset {preset_name!r}.")
        values = values_from_spec(preset.spec.model_dump(mode="json"))
        return _render_form(request, values, prefilled_from=f"the preset {preset.title}")
    if source_id is None:
        return _render_form(request, {})
    source = crud.get_experiment(session=session, experiment_id=source_id)
    if source is None:
        return _not_found(request, f"There is no experiment {source_id} to copy.")
    values = values_from_spec(source.spec, name_suffix=" (copy)")
    return _render_form(request, values, prefilled_from=f"experiment #{source_id}")


async def _form_values(request: Request) -> dict[str, str]:
    form: FormData = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


@router.post("/experiments/new")
def launch_experiment(
    request: Request,
    session: SessionDep,
    values: Annotated[dict[str, str], Depends(_form_values)],
) -> Response:
    try:
        experiment = launch(session, spec_from_form(values))
    except SpecError as exc:
        return _render_form(request, values, exc.errors, status_code=422)
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


@router.post("/presets/{name}/launch")
def launch_preset(request: Request, session: SessionDep, name: str) -> Response:
    """One click from a preset card. Presets are validated when they are defined, so only a
    check against the database could refuse one; then the form shows why, prefilled."""
    preset = PRESETS.get(name)
    if preset is None:
        return _not_found(request, f"There is no preset {name!r}.")
    spec = preset.spec.model_dump(mode="json")
    try:
        experiment = launch(session, spec)
    except SpecError as exc:
        return _render_form(request, values_from_spec(spec), exc.errors, status_code=422)
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


# --- one experiment ----------------------------------------------------------------------------


def evaluation_context(evaluation: EvaluationPublic | None) -> dict[str, Any]:
    """An imported report may come without its confusion matrix: then the table stands alone."""
    if evaluation is None:
        return {"evaluation": None}
    matrix = evaluation.confusion_matrix
    figure = None if matrix is None else confusion_matrix_figure(evaluation.classes, matrix)
    return {
        "evaluation": evaluation,
        "confusion_figure": figure,
        "report_rows": report_rows(evaluation.report, evaluation.classes),
    }


def _evaluation_of(experiment: Experiment) -> EvaluationPublic | None:
    if experiment.evaluation is None:
        return None
    return EvaluationPublic.model_validate(experiment.evaluation)


# --- phases, learning rate and speed, from the epoch rows ------------------------------------


def fine_tune_start(epochs: Sequence[EpochMetricPublic]) -> int | None:
    """The first fine-tuning epoch that follows an epoch of another phase, if any."""
    for previous, row in pairwise(epochs):
        if row.phase == FINE_TUNE and previous.phase != FINE_TUNE:
            return row.epoch
    return None


def boundary_marks(start_epoch: int) -> dict[str, dict[str, Any]]:
    """A dashed line between the last frozen-base epoch and the first fine-tuning one, and
    its label. The live page copies these when fine-tuning starts while it watches."""
    x = start_epoch - 0.5
    line = {"color": BOUNDARY_COLOR, "width": 1.5, "dash": "dash"}
    return {
        "shape": {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                  "y0": 0, "y1": 1, "line": line, "name": FINE_TUNE},
        "annotation": {"text": "fine-tuning", "xref": "x", "yref": "paper", "x": x, "y": 1,
                       "xanchor": "left", "yanchor": "top", "xshift": 3, "showarrow": False,
                       "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 2,
                       "font": {"color": BOUNDARY_COLOR, "size": 11}},
    }  # fmt: skip


def with_boundary(figure: dict[str, Any], start_epoch: int | None) -> dict[str, Any]:
    if start_epoch is not None:
        marks = boundary_marks(start_epoch)
        layout = figure["layout"]
        layout["shapes"] = [*layout.get("shapes", []), marks["shape"]]
        layout["annotations"] = [*layout.get("annotations", []), marks["annotation"]]
    return figure


def learning_rate_figure(
    epochs: Sequence[EpochMetricPublic], total_epochs: int | None
) -> dict[str, Any]:
    """The loss chart's frame (epoch axis, waiting note) with one trace on a log axis: a
    plateau cut or a fine-tuning phase shows as a step down, drawn between the two epochs."""
    figure = curves_figure(epochs, "loss", total_epochs=total_epochs)
    layout = figure["layout"]
    layout["title"]["text"] = "Learning rate"
    layout["showlegend"] = False
    layout["yaxis"].update(title={"text": "Learning rate"}, type="log", exponentformat="power")
    if not epochs:
        layout["yaxis"]["range"] = [-5, -1]  # log10: 1e-5 to 1e-1 while waiting
    trace = {
        **figure["data"][0],
        "name": "learning rate",
        "y": [row.learning_rate for row in epochs],
        "line": {"color": LEARNING_RATE_COLOR, "width": 2, "shape": "hvh"},
        "hovertemplate": "%{y:.2e}<extra></extra>",
    }
    figure["data"] = [trace]
    return figure


def mean_and_last(values: Sequence[float | None]) -> tuple[float, float] | None:
    known = [value for value in values if value is not None]
    return (statistics.fmean(known), known[-1]) if known else None


def _figures(epochs: Sequence[EpochMetricPublic], total: int | None) -> dict[str, Any]:
    start = fine_tune_start(epochs)
    return {
        "accuracy_figure": with_boundary(
            curves_figure(epochs, "accuracy", total_epochs=total), start
        ),
        "loss_figure": with_boundary(curves_figure(epochs, "loss", total_epochs=total), start),
        "learning_rate_figure": with_boundary(learning_rate_figure(epochs, total), start),
    }


def _page_data(
    experiment: ExperimentPublic, epochs: Sequence[EpochMetricPublic], has_evaluation: bool
) -> dict[str, Any]:
    """What the page script needs to pick the live stream up where the page left off."""
    last_epoch = epochs[-1].epoch if epochs else 0
    return {
        "id": experiment.id,
        "finished": Status(experiment.status).finished,
        "lastEpoch": last_epoch,
        "lastPhase": epochs[-1].phase if epochs else None,
        "seconds": [row.seconds for row in epochs],
        "imagesPerSecond": [row.images_per_second for row in epochs],
        "boundaryMarks": boundary_marks(0),
        "hasEvaluation": has_evaluation,
        "eventsUrl": f"/experiments/{experiment.id}/events?after_epoch={last_epoch}",
        "evaluationUrl": f"/experiments/{experiment.id}/evaluation",
    }


def _epochs(session: Session, experiment_id: int) -> list[EpochMetricPublic]:
    rows = crud.list_epochs(session=session, experiment_id=experiment_id)
    return [EpochMetricPublic.model_validate(row) for row in rows]


@router.get("/experiments/{experiment_id}")
def experiment_page(request: Request, session: SessionDep, experiment_id: int) -> Response:
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    if experiment is None:
        return _not_found(request, f"Experiment {experiment_id} does not exist.")
    public = ExperimentPublic.model_validate(experiment)
    epochs = _epochs(session, experiment_id)
    evaluation = _evaluation_of(experiment)
    context = {
        "experiment": public,
        "spec_groups": spec_groups(public.model, public.spec.get("hyperparameters", {})),
        "study": study_preset(public.tags),
        "seconds_per_epoch": mean_and_last([row.seconds for row in epochs]),
        "images_per_second": mean_and_last([row.images_per_second for row in epochs]),
        "page_data": _page_data(public, epochs, evaluation is not None),
        **_figures(epochs, public.total_epochs or None),
        **evaluation_context(evaluation),
    }
    return templates.TemplateResponse(request, "experiment.html", context)


@router.get("/experiments/{experiment_id}/evaluation")
def evaluation_panel(request: Request, session: SessionDep, experiment_id: int) -> Response:
    """The evaluation section alone: the live page swaps it in when training ends, so the
    table and heatmap have one rendering path."""
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    evaluation = None if experiment is None else _evaluation_of(experiment)
    if evaluation is None:
        return HTMLResponse('<p class="muted">No evaluation yet.</p>', status_code=404)
    return templates.TemplateResponse(request, "_evaluation.html", evaluation_context(evaluation))
