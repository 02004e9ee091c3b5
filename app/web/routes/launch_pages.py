"""The launch form (blank, cloned from an experiment or from a preset), one-click preset
launches, and the form that imports a published report. Each calls the same service as
the API (``app.services.launch``, ``app.services.importing``) and shows its refusals next
to the fields they name."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from app.core import crud
from app.core.naming import derived_name
from app.core.presets import PRESETS
from app.core.schemas import FieldError, RowId, SpecError, parse_spec
from app.services import importing, sweeps
from app.services.launch import BrokerUnavailable, launch
from app.services.quotas import QuotaExceeded
from app.web.deps import SessionDep
from app.web.forms import (
    form_context,
    import_data,
    import_errors,
    is_sweep,
    preset_sections,
    spec_from_form,
    sweep_from_form,
    values_from_spec,
)
from app.web.templating import SIGNED_IN, PageViewerDep, not_found, page_router, templates

router = page_router()


def quota_error(exc: QuotaExceeded) -> FieldError:
    return FieldError(field="limit", message=str(exc))


def copy_name(spec: dict[str, Any]) -> str:
    """The name box of a copy of ``spec``: blank when its name is the one ``derived_name``
    gives its spec (it was launched unnamed), so the launch names the copy by its own
    settings; a name read "custom_cnn · epochs=2 ... (copy)" on a run of epochs=1. A name
    someone chose is kept, with " (copy)" to tell the two apart in the list. A spec that no
    longer validates cannot have its name derived, so it keeps its name as chosen."""
    name = str(spec.get("name", ""))
    try:
        auto_named = name == derived_name(parse_spec(spec))
    except SpecError:
        auto_named = False
    return "" if auto_named else f"{name} (copy)"


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
            return not_found(request, f"There is no preset {preset_name!r}.")
        values = values_from_spec(preset.spec.model_dump(mode="json"))
        return _render_form(request, values, prefilled_from=f"the preset {preset.title}")
    if source_id is None:
        return _render_form(request, {})
    source = crud.get_experiment(session=session, experiment_id=source_id)
    if source is None:
        return not_found(request, f"There is no experiment {source_id} to copy.")
    values = values_from_spec({**source.spec, "name": copy_name(source.spec)})
    return _render_form(request, values, prefilled_from=f"experiment #{source_id}")


async def _form_values(request: Request) -> dict[str, str]:
    form: FormData = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


FormValuesDep = Annotated[dict[str, str], Depends(_form_values)]


@router.post("/experiments/new")
def launch_experiment(
    request: Request, session: SessionDep, principal: PageViewerDep, values: FormValuesDep
) -> Response:
    """One experiment, or a sweep when a setting is varied or there is more than one seed."""
    if is_sweep(values):
        return _launch_sweep(request, session, principal.user_id, values)
    try:
        experiment = launch(session, spec_from_form(values), owner_id=principal.user_id)
    except SpecError as exc:
        return _render_form(request, values, exc.errors, status_code=422)
    except QuotaExceeded as exc:
        return _render_form(request, values, [quota_error(exc)], status_code=429)
    except BrokerUnavailable as exc:  # stored and queued: its page shows it waiting
        experiment = exc.experiment
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)


def _launch_sweep(
    request: Request, session: SessionDep, owner_id: int | None, values: dict[str, str]
) -> Response:
    """The same validation as POST /api/sweeps: a refused sweep stores nothing and the form
    comes back as typed, each error next to the box it names (``grid.learning_rate[2]``)."""
    try:
        launched = sweeps.launch_sweep(session, sweep_from_form(values), owner_id=owner_id)
    except SpecError as exc:
        return _render_form(request, values, exc.errors, status_code=422)
    except QuotaExceeded as exc:
        return _render_form(request, values, [quota_error(exc)], status_code=429)
    return RedirectResponse(f"/sweeps/{launched.sweep.id}", status_code=303)


@router.post("/presets/{name}/launch")
def launch_preset(
    request: Request, session: SessionDep, principal: PageViewerDep, name: str
) -> Response:
    """One click from a preset card. Presets are validated when they are defined, so only a
    check against the database could refuse one; then the form shows why, prefilled."""
    preset = PRESETS.get(name)
    if preset is None:
        return not_found(request, f"There is no preset {name!r}.")
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
    """The same service as POST /api/experiments/import; errors go next to their field."""
    try:
        data = import_data(values)
    except ValueError as exc:  # the settings box, before anything else can be checked
        error = FieldError(field="hyperparameters", message=str(exc))
        return _render_import(request, values, [error], status_code=422)
    try:
        experiment = importing.import_report(session, data, owner_id=principal.user_id)
    except SpecError as exc:
        return _render_import(request, values, exc.errors, status_code=422)
    return RedirectResponse(f"/experiments/{experiment.id}", status_code=303)
