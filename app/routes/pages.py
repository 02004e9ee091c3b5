"""HTML pages: the experiments list, the launch and import forms, the live experiment page,
the workers page and the compare page with its CSV export.

Pages read the database only. Once accounts exist, a visitor who is not signed in is sent to
/login and back (fragments the page scripts fetch answer 401); every form post carries the
session's CSRF token. The forms are built in ``app.forms``, figures in
``app.charts`` and the compare page's parts in ``compare_pages``; this module holds the
routes, in one router so that fixed paths (``/experiments/new``, ``/experiments/import``)
come before ``/experiments/{id}``.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app import crud, json_text
from app.auth import CSRF_FIELD, Principal, csrf_matches, csrf_token, identify, viewer
from app.charts import (
    LIVE_TRACES,
    boundary_marks,
    confusion_matrix_figure,
    curves_figure,
    fine_tune_start,
    gap_figure,
    learning_rate_figure,
    report_rows,
    with_boundary,
    with_export_name,
)
from app.comparison import Run, diagnostics
from app.crud import EpochRow
from app.deps import HistoriesDep, SessionDep
from app.forms import (
    form_context,
    import_errors,
    preset_sections,
    report_import_from_form,
    spec_from_form,
    spec_groups,
    study_preset,
    values_from_spec,
)
from app.launcher import BrokerUnavailable, launch
from app.models import INTEGER_MAX, Experiment, Status
from app.presets import PRESETS
from app.quotas import QuotaExceeded
from app.resources import TEMPLATES_DIR
from app.routes import api, compare_pages
from app.routes.formatting import (
    format_ago,
    format_compact,
    format_datetime,
    format_duration,
    format_mean_last,
    format_number,
    format_p_value,
    format_percent,
    format_signed,
)
from app.schemas import (
    EpochMetricPublic,
    EvaluationPublic,
    ExperimentPublic,
    FieldError,
    RowId,
    SpecError,
    summaries,
)
from app.zoo import MODELS

router = APIRouter(include_in_schema=False)

PLOTLY_JS_URL = "/static/vendor/plotly.min.js"
PAGE_SIZE = 25
MAX_PAGE = INTEGER_MAX // PAGE_SIZE


# --- who is looking ----------------------------------------------------------------------------


def signed_in(request: Request) -> Principal | None:
    """The principal ``page_viewer`` found; None on pages that do not ask (the login page)."""
    return getattr(request.state, "principal", None)


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?" + urlencode({"next": here})


def page_viewer(request: Request, session: SessionDep) -> Principal:
    """A visitor who must sign in goes to /login and comes back here afterwards; the
    principal stays on the request so the nav can say who is signed in."""
    principal = identify(request, session)
    if principal.auth_required and principal.user is None:
        raise HTTPException(303, detail="sign in first", headers={"Location": login_url(request)})
    request.state.principal = principal
    return principal


PageViewerDep = Annotated[Principal, Depends(page_viewer)]
SIGNED_IN = [Depends(page_viewer)]
FRAGMENT_VIEWER = [Depends(viewer)]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        trim_blocks=True,
        auto_reload=False,  # templates ship with the package: no file check per render
    )
    env.filters.update(
        datetime=format_datetime,
        ago=format_ago,
        duration=format_duration,
        percent=format_percent,
        number=format_number,
        compact=format_compact,
        mean_last=format_mean_last,
        model_title=compare_pages.model_title,
        signed=format_signed,
        p_value=format_p_value,
    )
    env.policies["json.dumps_function"] = json_text.dumps
    env.globals.update(
        plotly_js_url=PLOTLY_JS_URL, statuses=list(Status), models=MODELS, csrf_token=csrf_token,
        csrf_field=CSRF_FIELD, signed_in=signed_in,
    )  # fmt: skip
    return env


templates = Jinja2Templates(env=_environment())


ERROR_TITLES = {403: "Refused", 404: "Not found"}
FORGED_FORM = (
    "This form was sent without the security token of your session: it may come from a page "
    "opened before you signed in again, or from another site. Nothing was changed. Go back, "
    "reload the page and send it again."
)


def error_page(request: Request, status_code: int, message: str) -> Response:
    title = ERROR_TITLES.get(status_code, "Cannot show this")
    context = {"status_code": status_code, "title": title, "message": message}
    return templates.TemplateResponse(request, "error.html", context, status_code=status_code)


def _not_found(request: Request, message: str) -> Response:
    return error_page(request, 404, message)


def refuse_forgery(request: Request, sent: str | None) -> Response | None:
    """Another site can make a browser post a form here, cookies and all, but cannot read
    the token the page was rendered with; without it nothing happens."""
    return None if csrf_matches(request, sent) else error_page(request, 403, FORGED_FORM)


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


@router.api_route(PLOTLY_JS_URL, methods=["GET", "HEAD"])
def plotly_js(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """Served, not copied into the repo and never from a CDN: pages work offline."""
    path, etag = _plotly_js()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if _etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type="text/javascript", headers=headers)


# --- the experiments list ----------------------------------------------------------------------

# Each sortable column and the order its first click gives: names A-Z, numbers highest first.
FIRST_ORDER = {
    "name": "asc", "model": "asc", "status": "asc", "current_epoch": "desc",
    "test_accuracy": "desc", "macro_f1": "desc", "parameters": "desc", "created_at": "desc",
}  # fmt: skip
DEFAULT_SORT = ("created_at", "desc")


def _list_url(filters: dict[str, str], page: int = 1) -> str:
    """Only what differs from the defaults goes in the URL, so the plain list stays ``/``."""
    query = {key: value for key, value in filters.items() if value}
    if (query.get("sort", DEFAULT_SORT[0]), query.get("order", DEFAULT_SORT[1])) == DEFAULT_SORT:
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


def _owner_filter(owner: str, principal: Principal) -> str | None:
    """``me`` is whoever is signed in; with nobody signed in it filters nothing."""
    if owner == "me":
        return principal.user.username if principal.user else None
    return owner.strip() or None


@router.get("/")
def experiments_page(
    request: Request,
    session: SessionDep,
    principal: PageViewerDep,
    status: str = "",
    model: str = "",
    tag: str = "",
    q: str = "",
    owner: str = "",
    sort: str = DEFAULT_SORT[0],
    order: str = DEFAULT_SORT[1],
    page: int = 1,
) -> Response:
    page = min(max(page, 1), MAX_PAGE)
    sort = sort if sort in FIRST_ORDER else DEFAULT_SORT[0]
    order = "asc" if order == "asc" else "desc"
    items, total = crud.list_experiments(
        session=session, status=status or None, model=model or None, tag=tag.strip() or None,
        q=q.strip() or None, owner=_owner_filter(owner, principal), sort=sort,
        descending=order == "desc", limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip
    filters = {
        "status": status, "model": model, "tag": tag, "q": q, "owner": owner.strip(),
        "sort": sort, "order": order,
    }  # fmt: skip
    pages = max(1, math.ceil(total / PAGE_SIZE))
    context = {
        "experiments": summaries(items),
        "total": total,
        "filters": filters,
        "filtered": any((status, model, tag.strip(), q.strip(), owner.strip())),
        "sort_links": _sort_links(filters),
        "page": page,
        "previous_url": _list_url(filters, page - 1) if page > 1 else None,
        "next_url": _list_url(filters, page + 1) if page < pages else None,
        "pages": pages,
        "principal": principal,
        "show_owners": principal.auth_required or principal.user is not None,
    }
    return templates.TemplateResponse(request, "experiments.html", context)


# --- the launch form and its presets -----------------------------------------------------------


def quota_error(exc: QuotaExceeded) -> FieldError:
    return FieldError(field="limit", message=str(exc))


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


@router.get("/experiments/new", dependencies=SIGNED_IN)
def new_experiment_page(
    request: Request,
    session: SessionDep,
    source_id: Annotated[RowId | None, Query(alias="from")] = None,
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


FormValuesDep = Annotated[dict[str, str], Depends(_form_values)]


@router.post("/experiments/new")
def launch_experiment(
    request: Request, session: SessionDep, principal: PageViewerDep, values: FormValuesDep
) -> Response:
    if refused := refuse_forgery(request, values.get(CSRF_FIELD)):
        return refused
    try:
        experiment = launch(session, spec_from_form(values), owner_id=principal.user_id)
    except SpecError as exc:
        return _render_form(request, values, exc.errors, status_code=422)
    except QuotaExceeded as exc:
        return _render_form(request, values, [quota_error(exc)], status_code=429)
    except BrokerUnavailable as exc:  # stored and queued: its page shows it waiting
        experiment = exc.experiment
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


@router.post("/presets/{name}/launch")
def launch_preset(
    request: Request,
    session: SessionDep,
    principal: PageViewerDep,
    values: FormValuesDep,
    name: str,
) -> Response:
    """One click from a preset card. Presets are validated when they are defined, so only a
    check against the database could refuse one; then the form shows why, prefilled."""
    if refused := refuse_forgery(request, values.get(CSRF_FIELD)):
        return refused
    preset = PRESETS.get(name)
    if preset is None:
        return _not_found(request, f"There is no preset {name!r}.")
    spec = preset.spec.model_dump(mode="json")
    try:
        experiment = launch(session, spec, owner_id=principal.user_id)
    except SpecError as exc:
        return _render_form(request, values_from_spec(spec), exc.errors, status_code=422)
    except QuotaExceeded as exc:
        return _render_form(request, values_from_spec(spec), [quota_error(exc)], status_code=429)
    except BrokerUnavailable as exc:
        experiment = exc.experiment
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


# --- importing a published report --------------------------------------------------------------


def _render_import(
    request: Request,
    values: dict[str, str],
    errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> Response:
    attached, unattached = import_errors(errors or [])
    context = {
        "values": values, "errors": errors or [], "attached": attached, "unattached": unattached,
    }  # fmt: skip
    return templates.TemplateResponse(request, "import.html", context, status_code=status_code)


@router.get("/experiments/import", dependencies=SIGNED_IN)
def import_page(request: Request) -> Response:
    return _render_import(request, {})


@router.post("/experiments/import")
def import_report(
    request: Request, session: SessionDep, principal: PageViewerDep, values: FormValuesDep
) -> Response:
    """The same checks as POST /api/experiments/import; errors go next to their field."""
    if refused := refuse_forgery(request, values.get(CSRF_FIELD)):
        return refused
    try:
        body, imported = report_import_from_form(values)
    except SpecError as exc:
        return _render_import(request, values, exc.errors, status_code=422)
    experiment = crud.import_experiment(
        session=session, name=body.name, tags=list(body.tags), notes=body.notes,
        imported=imported, owner_id=principal.user_id,
    )  # fmt: skip
    session.commit()
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


# --- one experiment ----------------------------------------------------------------------------


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
    if experiment is not None and compare_pages.has_gallery(experiment):
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


def diagnostics_context(
    experiment: Run, rows: Sequence[EpochRow | EpochMetricPublic]
) -> dict[str, Any]:
    """The curves read in words (``app.diagnostics``) beside the generalization gap chart."""
    diagnosis = diagnostics(experiment, rows)
    figure = gap_figure(
        diagnosis["generalization_gap"],
        diagnosis["best_epoch"],
        total_epochs=experiment.total_epochs or None,
    )
    return {
        "diagnosis": diagnosis,
        "gap_figure": with_export_name(figure, f"cifarlab-experiment-{experiment.id}-gap"),
    }


def render_diagnostics(experiment: Run, rows: Sequence[EpochRow | EpochMetricPublic]) -> str:
    """The diagnostics section as its page draws it; the live stream sends it after each new
    epoch and at the end, from the rows it holds."""
    context = diagnostics_context(experiment, rows)
    return templates.env.get_template("_diagnostics.html").render(context)


def render_evaluation(experiment: Experiment) -> str | None:
    """The evaluation section as its page draws it (None before there is one); the live
    stream sends it once the run has been evaluated."""
    evaluation = _evaluation_of(experiment)
    if evaluation is None:
        return None
    context = evaluation_context(evaluation, experiment)
    return templates.env.get_template("_evaluation.html").render(context)


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
        "traces": {f"{chart.replace('_', '-')}-chart": keys for chart, keys in LIVE_TRACES.items()},
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
        return _not_found(request, f"Experiment {experiment_id} does not exist.")
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
    return HTMLResponse(render_diagnostics(experiment, rows))


# --- workers and the queue ---------------------------------------------------------------------

QUEUE_SHOWN = 50
WORKERS_POLL_MILLISECONDS = 3000


def workers_context(session: Session) -> dict[str, Any]:
    """The workers GET /api/workers lists (one definition of "online"), and the queue oldest
    first: the order ``crud.queue_position`` counts in."""
    queue, queued = crud.list_experiments(
        session=session, status=Status.queued, sort="created_at", descending=False,
        limit=QUEUE_SHOWN,
    )  # fmt: skip
    return {"workers": api.list_workers(session), "queue": queue, "queued": queued}


@router.get("/workers", dependencies=SIGNED_IN)
def workers_page(request: Request, session: SessionDep) -> Response:
    context = {**workers_context(session), "poll_milliseconds": WORKERS_POLL_MILLISECONDS}
    return templates.TemplateResponse(request, "workers.html", context)


@router.get("/workers/live", dependencies=FRAGMENT_VIEWER)
def workers_live(request: Request, session: SessionDep) -> Response:
    """The page's two tables alone: static/workers.js swaps them in every few seconds."""
    return templates.TemplateResponse(request, "_workers.html", workers_context(session))


# --- comparing experiments ---------------------------------------------------------------------

IdsQuery = Annotated[
    list[str] | None, Query(description="Experiment ids: ids=1,2,3 or ids=1&ids=2&ids=3")
]


def _sections(context: dict[str, Any]) -> dict[str, str]:
    """Each live section's HTML, rendered by the template the page itself includes."""
    return {
        name: templates.get_template(f"compare/{name}.html").render(context)
        for name in compare_pages.SECTIONS
    }


@router.get("/compare", dependencies=SIGNED_IN)
def compare_page(
    request: Request,
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
) -> Response:
    try:
        experiments, comparison = compare_pages.load_comparison(session, histories, ids, baseline)
    except HTTPException as exc:
        return error_page(request, exc.status_code, str(exc.detail))
    except SpecError as exc:
        return error_page(request, 422, str(exc))
    context = compare_pages.compare_context(experiments, comparison)
    context["page_data"] = compare_pages.page_data(context, comparison)
    return templates.TemplateResponse(request, "compare.html", context)


@router.get("/compare/live", dependencies=FRAGMENT_VIEWER)
def compare_live(
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
) -> dict[str, Any]:
    """What the compare page polls while an experiment is queued or running: its figures
    and the HTML of each section that changes as runs progress."""
    experiments, comparison = compare_pages.load_comparison(session, histories, ids, baseline)
    context = compare_pages.compare_context(experiments, comparison)
    return {**compare_pages.live_data(context, comparison), "sections": _sections(context)}


@router.get("/compare/difference", dependencies=FRAGMENT_VIEWER)
def compare_difference(
    session: SessionDep,
    a: Annotated[RowId, Query(description="Experiment A")],
    b: Annotated[RowId, Query(description="Experiment B")],
    normalized: bool = False,
) -> JSONResponse:
    """Confusion matrix A - B, for the two experiments the page's selects name."""
    try:
        return JSONResponse(compare_pages.difference(session, a, b, normalized=normalized))
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)


@router.get("/compare.csv", dependencies=SIGNED_IN)
def compare_csv(
    session: SessionDep,
    histories: HistoriesDep,
    ids: IdsQuery = None,
    baseline: RowId | None = None,
) -> Response:
    """The compare page's tables as one flat CSV (see ``compare_pages.csv_rows``)."""
    experiments, comparison = compare_pages.load_comparison(session, histories, ids, baseline)
    stem = "-".join(str(e.id) for e in experiments)
    return Response(
        compare_pages.csv_text(comparison),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="cifarlab-compare-{stem}.csv"',
            "X-Content-Type-Options": "nosniff",
        },
    )
