"""HTML pages: the experiments list, the launch form and the live experiment page.

Pages read the database only; the launch form validates with the same ``parse_spec`` the API
and CLI use, so a spec that the form accepts is one the worker can run.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import jinja2
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.datastructures import FormData

from app import crud
from app.charts import confusion_matrix_figure, curves_figure, report_rows
from app.deps import SessionDep
from app.launcher import launch
from app.models import Experiment, Status
from app.schemas import (
    EpochMetricPublic,
    EvaluationPublic,
    ExperimentPublic,
    FieldError,
    SpecError,
)
from app.zoo import MODELS, ModelInfo

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
PLOTLY_JS_URL = "/static/vendor/plotly.min.js"
PAGE_SIZE = 25
HP_PREFIX = "hp."
PRIMARY_GROUPS = ("Training", "Model")
OTHER_GROUP = "Other settings"
FAMILY_TITLES = {"from_scratch": "From scratch", "transfer": "Transfer learning"}


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


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True, trim_blocks=True
    )
    env.filters.update(
        datetime=format_datetime,
        duration=format_duration,
        percent=format_percent,
        number=format_number,
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


# --- the launch form, generated from each model's hyperparameter JSON schema -------------------


@dataclass(frozen=True)
class FormField:
    """One hyperparameter input; ``nullable`` fields submit an empty input as null."""

    key: str
    label: str
    help: str
    kind: Literal["number", "select", "text"]
    default: str
    nullable: bool
    group: str
    attributes: dict[str, str] = field(default_factory=dict)
    options: tuple[tuple[str, str], ...] = ()

    @property
    def input_name(self) -> str:
        return HP_PREFIX + self.key

    @property
    def error_path(self) -> str:
        return f"hyperparameters.{self.key}"


@dataclass(frozen=True)
class FieldGroup:
    title: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class HyperparameterForm:
    """The inputs of one hyperparameter class; the models that share the class share it."""

    key: str
    models: tuple[str, ...]
    groups: tuple[FieldGroup, ...]

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for group in self.groups for f in group.fields)


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number_attributes(schema: dict[str, Any]) -> dict[str, str]:
    attributes = {"step": "1" if schema.get("type") == "integer" else "any"}
    for bound, names in (("min", ("minimum", "exclusiveMinimum")), ("max", ("maximum",))):
        value = next((schema[name] for name in names if name in schema), None)
        if value is not None:
            attributes[bound] = _to_text(value)
    return attributes


def _options(schema: dict[str, Any], nullable: bool) -> tuple[tuple[str, str], ...]:
    if schema.get("type") == "boolean":
        choices: list[tuple[str, str]] = [("true", "Yes"), ("false", "No")]
    else:
        choices = [(_to_text(value), _to_text(value)) for value in schema.get("enum", [])]
    return ((("", "—"),) if nullable else ()) + tuple(choices)


def form_field(key: str, prop: dict[str, Any]) -> FormField:
    """One JSON-schema property -> one input; ``anyOf [X, null]`` is an optional X."""
    variants: list[dict[str, Any]] = prop.get("anyOf", [prop])
    nullable = any(variant.get("type") == "null" for variant in variants)
    schema: dict[str, Any] = next((v for v in variants if v.get("type") != "null"), {})
    is_number = schema.get("type") in ("integer", "number")
    is_choice = schema.get("type") == "boolean" or "enum" in schema
    kind: Literal["number", "select", "text"] = (
        "number" if is_number else "select" if is_choice else "text"
    )
    return FormField(
        key=key,
        label=prop.get("title", key.replace("_", " ").capitalize()),
        help=prop.get("description", ""),
        kind=kind,
        default=_to_text(prop.get("default")),
        nullable=nullable,
        group=prop.get("group", OTHER_GROUP),
        attributes=_number_attributes(schema) if is_number else {},
        options=_options(schema, nullable) if is_choice else (),
    )


def _grouped(fields: list[FormField]) -> tuple[FieldGroup, ...]:
    """Fields by their schema ``group``: the primary groups first, the rest as declared."""
    declared = list(dict.fromkeys(f.group for f in fields))
    rank = {title: PRIMARY_GROUPS.index(title) for title in PRIMARY_GROUPS}
    titles = sorted(declared, key=lambda title: rank.get(title, len(rank)))
    return tuple(FieldGroup(t, tuple(f for f in fields if f.group == t)) for t in titles)


@lru_cache
def hyperparameter_forms() -> tuple[HyperparameterForm, ...]:
    """One form per hyperparameter class, so nine transfer models do not repeat 35 inputs."""
    models_by_class: dict[type[BaseModel], list[str]] = {}
    for info in MODELS.values():
        models_by_class.setdefault(info.hyperparameters, []).append(info.name)
    forms = []
    for hyperparameters, names in models_by_class.items():
        properties = hyperparameters.model_json_schema().get("properties", {})
        fields = [form_field(key, prop) for key, prop in properties.items()]
        forms.append(HyperparameterForm(names[0], tuple(names), _grouped(fields)))
    return tuple(forms)


def form_for(model: str) -> HyperparameterForm | None:
    return next((form for form in hyperparameter_forms() if model in form.models), None)


def _fields_of(model: str) -> tuple[FormField, ...]:
    form = form_for(model)
    return form.fields if form else ()


def model_choices() -> list[tuple[str, list[ModelInfo]]]:
    """The model select's option groups, by family."""
    families: dict[str, list[ModelInfo]] = {}
    for info in MODELS.values():
        families.setdefault(info.family, []).append(info)
    return [
        (FAMILY_TITLES.get(family, family.replace("_", " ").capitalize()), infos)
        for family, infos in families.items()
    ]


def open_groups(
    form: HyperparameterForm, values: dict[str, str], error_paths: set[str]
) -> set[str]:
    """Primary groups are open; another opens when it holds an error or a changed value."""
    opened = set(PRIMARY_GROUPS)
    for group in form.groups:
        for f in group.fields:
            changed = values.get(f.input_name, f.default).strip() != f.default
            if changed or f.error_path in error_paths:
                opened.add(group.title)
    return opened


def _split_tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def spec_from_form(values: dict[str, str]) -> dict[str, Any]:
    """Form strings -> a spec dict. An empty input is left out so the default applies, except
    for a nullable field, where empty means null ("all images"). Numbers stay strings:
    pydantic's lax mode coerces them and names the field when it cannot."""
    model = values.get("model", "")
    nullable = {f.key for f in _fields_of(model) if f.nullable}
    hyperparameters: dict[str, Any] = {}
    for name, raw in values.items():
        if not name.startswith(HP_PREFIX):
            continue
        key, value = name.removeprefix(HP_PREFIX), raw.strip()
        if value:
            hyperparameters[key] = value
        elif key in nullable:
            hyperparameters[key] = None
    return {
        "name": values.get("name", ""),
        "model": model,
        "tags": _split_tags(values.get("tags", "")),
        "hyperparameters": hyperparameters,
    }


@dataclass(frozen=True)
class SpecGroup:
    """One group of a stored spec's hyperparameters, for the experiment page."""

    title: str
    rows: tuple[tuple[str, str, bool], ...]  # key, shown value, changed from the default
    open: bool


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def spec_groups(model: str, hyperparameters: dict[str, Any]) -> list[SpecGroup]:
    """Grouped like the form; groups with a value changed from its default start open."""
    form = form_for(model)
    fields = form.fields if form else ()
    values = {HP_PREFIX + key: _to_text(value) for key, value in hyperparameters.items()}
    opened = open_groups(form, values, set()) if form else set()
    groups = []
    for group in form.groups if form else ():
        rows = tuple(
            (f.key, _shown(hyperparameters[f.key]), values[f.input_name] != f.default)
            for f in group.fields
            if f.key in hyperparameters
        )
        groups.append(SpecGroup(group.title, rows, group.title in opened))
    known = {f.key for f in fields}
    others = tuple((k, _shown(v), False) for k, v in hyperparameters.items() if k not in known)
    if others:  # a spec stored before its model's class changed: still show all of it
        groups.append(SpecGroup(OTHER_GROUP, others, True))
    return groups


def values_from_spec(spec: dict[str, Any]) -> dict[str, str]:
    """A stored spec -> form values, for cloning an experiment."""
    values = {
        "name": f"{spec.get('name', '')} (copy)",
        "model": str(spec.get("model", "")),
        "tags": ", ".join(spec.get("tags", [])),
    }
    for key, value in spec.get("hyperparameters", {}).items():
        values[HP_PREFIX + key] = _to_text(value)
    return values


def _error_target(error_field: str, paths: list[str]) -> str | None:
    """The input an error belongs to: ``tags.0`` belongs to ``tags``."""
    matches = [p for p in paths if error_field == p or error_field.startswith(p + ".")]
    return max(matches, key=len, default=None)


def group_errors(
    errors: list[FieldError], model: str
) -> tuple[dict[str, list[FieldError]], list[FieldError]]:
    """Errors by the input they are shown next to, and those that belong to no input."""
    paths = ["name", "model", "tags", *(f.error_path for f in _fields_of(model))]
    attached: dict[str, list[FieldError]] = {}
    unattached: list[FieldError] = []
    for error in errors:
        target = _error_target(error.field, paths)
        if target is None:
            unattached.append(error)
        else:
            attached.setdefault(target, []).append(error)
    return attached, unattached


def _render_form(
    request: Request,
    values: dict[str, str],
    errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> Response:
    model = values.get("model", "")
    if model not in MODELS:
        model = next(iter(MODELS))
    chosen_form = form_for(model)
    attached, unattached = group_errors(errors or [], model)
    context = {
        "model_choices": model_choices(),
        "forms": hyperparameter_forms(),
        "chosen": model,
        "chosen_form": chosen_form.key if chosen_form else "",
        "primary_groups": PRIMARY_GROUPS,
        "open_groups": open_groups(chosen_form, values, set(attached)) if chosen_form else set(),
        "values": values,
        "errors": errors or [],
        "attached": attached,
        "unattached": unattached,
    }
    return templates.TemplateResponse(request, "new.html", context, status_code=status_code)


@router.get("/experiments/new")
def new_experiment_page(
    request: Request,
    session: SessionDep,
    source_id: Annotated[int | None, Query(alias="from")] = None,
) -> Response:
    """``?from=ID`` prefills the form with that experiment's spec (clone and tweak)."""
    if source_id is None:
        return _render_form(request, {})
    source = crud.get_experiment(session=session, experiment_id=source_id)
    if source is None:
        return _not_found(request, f"There is no experiment {source_id} to copy.")
    return _render_form(request, values_from_spec(source.spec))


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


# --- one experiment ----------------------------------------------------------------------------


def evaluation_context(evaluation: EvaluationPublic | None) -> dict[str, Any]:
    if evaluation is None:
        return {"evaluation": None}
    return {
        "evaluation": evaluation,
        "confusion_figure": confusion_matrix_figure(
            evaluation.classes, evaluation.confusion_matrix
        ),
        "report_rows": report_rows(evaluation.report, evaluation.classes),
    }


def _evaluation_of(experiment: Experiment) -> EvaluationPublic | None:
    if experiment.evaluation is None:
        return None
    return EvaluationPublic.model_validate(experiment.evaluation)


def _page_data(
    experiment: ExperimentPublic, last_epoch: int, has_evaluation: bool
) -> dict[str, Any]:
    """What the page script needs to pick the live stream up where the page left off."""
    return {
        "id": experiment.id,
        "finished": Status(experiment.status).finished,
        "lastEpoch": last_epoch,
        "hasEvaluation": has_evaluation,
        "eventsUrl": f"/experiments/{experiment.id}/events?after_epoch={last_epoch}",
        "evaluationUrl": f"/experiments/{experiment.id}/evaluation",
    }


@router.get("/experiments/{experiment_id}")
def experiment_page(request: Request, session: SessionDep, experiment_id: int) -> Response:
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    if experiment is None:
        return _not_found(request, f"Experiment {experiment_id} does not exist.")
    public = ExperimentPublic.model_validate(experiment)
    epochs = [
        EpochMetricPublic.model_validate(row)
        for row in crud.list_epochs(session=session, experiment_id=experiment_id)
    ]
    evaluation = _evaluation_of(experiment)
    total = public.total_epochs or None
    context = {
        "experiment": public,
        "spec_groups": spec_groups(public.model, public.spec.get("hyperparameters", {})),
        "accuracy_figure": curves_figure(epochs, "accuracy", total_epochs=total),
        "loss_figure": curves_figure(epochs, "loss", total_epochs=total),
        "page_data": _page_data(public, epochs[-1].epoch if epochs else 0, evaluation is not None),
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
