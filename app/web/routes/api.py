"""The JSON API: everything the pages show, for scripts and the CLI."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Body,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    params,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import BaseRoute, Match

from app.core import crud
from app.core.columns import ColumnFilter
from app.core.config import get_settings
from app.core.models import Experiment
from app.core.naming import parse_named_spec
from app.core.presets import PRESETS, Preset
from app.core.queue import online_workers
from app.core.schemas import (
    CREATED_EXPERIMENT,
    ERROR_RESPONSES,
    BulkRequest,
    BulkResultsPublic,
    Count,
    EvaluationPublic,
    ExperimentDetail,
    ExperimentPublic,
    ExperimentsPublic,
    ExperimentUpdate,
    HealthPublic,
    MetricsPublic,
    ModelPublic,
    RowId,
    SpecError,
    TimeToAccuracyPublic,
    WorkerPublic,
    error_message,
    summaries,
)
from app.core.sweeps import MAX_TRIALS
from app.core.time_to_accuracy import time_to_accuracy
from app.core.zoo import MODELS
from app.services import bulk
from app.services.cancel import cancel
from app.services.delete import delete
from app.services.errors import Conflict, NotFound
from app.services.estimates import TimeEstimatePublic, estimate
from app.services.launch import BROKER_RETRY_AFTER_SECONDS, BrokerUnavailable, launch
from app.services.lookup import find_experiment
from app.services.quotas import QuotaExceeded
from app.services.retry import retry
from app.services.update import update
from app.services.workers import list_online
from app.web.auth import ActorDep, ViewerDep, ensure_can_modify, identify, viewer
from app.web.deps import SessionDep, SortedColumnsDep
from app.web.list_filters import ApiExperimentFilters, column_filters
from app.web.templating import error_page, navigates_to_a_page

logger = logging.getLogger(__name__)
router = APIRouter(
    prefix="/api", tags=["api"], dependencies=[Depends(viewer)], responses=ERROR_RESPONSES
)
public_router = APIRouter(prefix="/api", tags=["api"], responses=ERROR_RESPONSES)

SPEC_EXAMPLE = {
    "name": "cnn baseline",
    "model": "custom_cnn",
    "tags": ["baseline"],
    "hyperparameters": {"epochs": 2, "train_size": 500, "test_size": 200},
}


SIBLINGS = ("estimate", "bulk", "import")
"""The fixed paths beside ``/api/experiments/{experiment_id}``: POST-only routes."""


class ExperimentIdConvertor(Convertor[str]):
    """``/api/experiments/{experiment_id:experiment}``: any path segment except a sibling
    route's name, so ``/api/experiments/abc`` reaches the route and its typed id answers a
    422 naming ``experiment_id`` (as ``/api/sweeps/abc`` does; Starlette's ``int`` answered
    a bare 404), while ``GET /api/experiments/estimate`` is still a 405 naming POST."""

    regex = rf"(?!(?:{'|'.join(map(re.escape, SIBLINGS))})$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("experiment", ExperimentIdConvertor())


WHERE = ("body", "query", "path", "header")
"""Where a request's value comes from: left out of the field an error names."""
JSON_HINT = "send JSON with content-type: application/json"


def _sends_json(request: Request) -> bool:
    """Whether the request says its body is JSON, as FastAPI decides whether to read it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    maintype, _, subtype = content_type.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


def _takes_json(request: Request) -> bool:
    """Whether the matched route reads its body as JSON (the sign-in form reads a form)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return body_field is not None and not isinstance(body_field.field_info, params.Form)


def _field_error(
    request: Request, exc: RequestValidationError, error: dict[str, Any]
) -> dict[str, str]:
    """One validation error as ``{field, message}``. The body as a whole is ``body``: JSON
    that does not parse says where (FastAPI named the character offset as the field), and a
    body the route could not read as JSON because it came as another type (or none) says to
    send JSON, where pydantic said "Input should be a valid dictionary" of nothing in
    particular."""
    loc = tuple(error["loc"])
    if error["type"] == "json_invalid":
        reason = str((error.get("ctx") or {}).get("error", error["msg"]))
        if isinstance(exc.body, str) and len(loc) == 2 and isinstance(loc[1], int):
            where = json.JSONDecodeError(reason, exc.body, loc[1])
            reason = f"{reason} at line {where.lineno} column {where.colno}"
        return {"field": "body", "message": f"not valid JSON ({reason})"}
    if loc == ("body",):
        if _takes_json(request) and not _sends_json(request):
            return {"field": "body", "message": JSON_HINT}
        if _takes_json(request) and error["type"] == "missing":
            return {"field": "body", "message": f"required; {JSON_HINT}"}
        return {"field": "body", "message": error_message(error)}
    field = ".".join(str(part) for part in loc if part not in WHERE)
    return {"field": field, "message": error_message(error)}


def install_error_handlers(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Every refusal is JSON with a message a person can act on, naming the field.
    ``routes``: all of the app's routes, for the methods a 405 lists."""

    @app.exception_handler(SpecError)
    async def spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
            content={"detail": str(exc), "errors": [e.model_dump() for e in exc.errors]},
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=status.HTTP_404_NOT_FOUND, content={"detail": str(exc)})

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse(status_code=status.HTTP_409_CONFLICT, content={"detail": str(exc)})

    @app.exception_handler(QuotaExceeded)
    async def quota_exceeded(_: Request, exc: QuotaExceeded) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            content={"detail": str(exc)},
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )

    @app.exception_handler(BrokerUnavailable)
    async def broker_unavailable(_: Request, exc: BrokerUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            content={"detail": str(exc), "experiment_id": exc.experiment.id},
            headers={"Retry-After": str(BROKER_RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [_field_error(request, exc, e) for e in exc.errors()]
        detail = "; ".join(f"{e['field'] or 'request'}: {e['message']}" for e in errors)
        if navigates_to_a_page(request):
            message = f"The address has a value cifarlab cannot read: {detail}."
            return error_page(request, 422, message)
        return JSONResponse(status_code=422, content={"detail": detail, "errors": errors})

    @app.exception_handler(405)
    async def method_not_allowed(request: Request, _: Exception) -> JSONResponse:
        """Each method of a path is its own route, and Starlette's 405 named only the first
        route's methods: ``Allow`` lists every method any route of this path accepts."""
        allowed = sorted(
            {
                method
                for route in routes
                if route.matches(request.scope)[0] != Match.NONE
                for method in getattr(route, "methods", None) or ()
            }
        )
        return JSONResponse(
            status_code=405,
            content={"detail": f"{request.method} is not allowed here; use {', '.join(allowed)}"},
            headers={"Allow": ", ".join(allowed)},
        )


LAUNCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "Stored and queued, but the broker did not answer; it is sent later"},
}


@router.post(
    "/experiments",
    status_code=201,
    response_model=ExperimentPublic,
    responses={**CREATED_EXPERIMENT, **LAUNCH_RESPONSES},
)
def create_experiment(
    session: SessionDep,
    principal: ActorDep,
    spec: Annotated[dict[str, Any], Body(examples=[SPEC_EXAMPLE])],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Any unique string: a retried request with the same key and body "
            "returns the experiment the first one launched instead of a second one.",
        ),
    ] = None,
) -> Experiment:
    """Launch an experiment. The body is an experiment spec; see GET /api/models for each
    model's hyperparameters, their defaults and bounds. A missing or blank `name` is derived
    from the settings that differ from the preset (named in `tags`) or the model's defaults:
    `custom_cnn · batch_size=64 dropout_rate=0.3`."""
    return launch(session, spec, owner_id=principal.user_id, idempotency_key=idempotency_key)


@router.post("/experiments/estimate", response_model=TimeEstimatePublic)
def estimate_experiment(
    session: SessionDep,
    spec: Annotated[dict[str, Any], Body(examples=[SPEC_EXAMPLE])],
    trials: Annotated[
        int, Query(ge=1, le=MAX_TRIALS, description="Trials of a sweep of this spec.")
    ] = 1,
    max_parallel: Annotated[
        int | None, Query(ge=1, le=MAX_TRIALS, description="A sweep's trials at once.")
    ] = None,
) -> TimeEstimatePublic:
    """How long a spec would train on each kind of online worker, without launching it: the
    body is what POST /api/experiments takes (the name may be left out), refused the same way.
    Figures come from the epochs that runs on each worker kind recorded; with none, ``basis``
    says how to get one."""
    return estimate(session, parse_named_spec(spec), trials=trials, max_parallel=max_parallel)


@router.get("/experiments", response_model=ExperimentsPublic)
def list_experiments(
    session: SessionDep,
    sorted_columns: SortedColumnsDep,
    principal: ViewerDep,
    filters: Annotated[ApiExperimentFilters, Query()],
    where: Annotated[list[ColumnFilter], Depends(column_filters)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[Count, Query()] = 0,
) -> dict[str, Any]:
    """`status`, `model` and `tag` may be repeated to match any of their values. Filter on
    any metric or hyperparameter column as well: `hp.learning_rate=0.001`
    (equal), `hp.learning_rate.min=0.0005`, `best_val_accuracy.max=0.9` (inclusive bounds);
    an unknown column is a 422 naming the parameter. Each item carries its
    `best_val_accuracy`."""
    items, total = sorted_columns.list_experiments(
        session, **filters.query(principal, where), limit=limit, offset=offset
    )
    listed = summaries(items)
    best = crud.best_val_accuracies(session=session, experiment_ids=[i.id for i in listed])
    for item in listed:
        item.best_val_accuracy = best.get(item.id)
    return {"items": listed, "total": total}


@router.post("/experiments/bulk", response_model=BulkResultsPublic)
def bulk_action(session: SessionDep, principal: ActorDep, request: BulkRequest) -> dict[str, Any]:
    """Tag, cancel or delete many experiments: each as its own request would, with the same
    permission check, so the answer says per id what happened (`done`, `unchanged`,
    `forbidden`, `not_found`, `conflict`, `invalid`) and one refusal stops nothing else."""
    action = bulk.Action(request.action)
    results = bulk.apply(
        session, request.ids, action, may_modify=principal.can_modify, tag=request.tag
    )
    return {"results": [asdict(result) for result in results]}


@router.get("/experiments/{experiment_id:experiment}", response_model=ExperimentDetail)
def get_experiment(session: SessionDep, experiment_id: RowId) -> ExperimentDetail:
    """With `training_seconds` (time inside epochs) and `time_to_accuracy`: per validation
    accuracy threshold, the first epoch that reached it and the training seconds until then."""
    experiment = find_experiment(session, experiment_id, detail=True)
    public = ExperimentPublic.model_validate(experiment)
    public.queue_position = crud.queue_position(session=session, experiment=experiment)
    epochs = crud.list_epochs(session=session, experiment_id=experiment_id)
    reached = [TimeToAccuracyPublic.model_validate(r) for r in time_to_accuracy(epochs)]
    return ExperimentDetail(**dict(public), time_to_accuracy=reached)


@router.get("/experiments/{experiment_id}/metrics", response_model=MetricsPublic)
def get_metrics(session: SessionDep, experiment_id: RowId) -> dict[str, Any]:
    find_experiment(session, experiment_id)
    return {"epochs": crud.list_epochs(session=session, experiment_id=experiment_id)}


@router.get("/experiments/{experiment_id}/evaluation", response_model=EvaluationPublic)
def get_evaluation(session: SessionDep, experiment_id: RowId) -> Any:
    experiment = find_experiment(session, experiment_id)
    if experiment.evaluation is None:
        raise HTTPException(
            status_code=404,
            detail=f"experiment {experiment_id} has no evaluation yet "
            f"(status: {experiment.status})",
        )
    return experiment.evaluation


@router.post(
    "/experiments/{experiment_id}/retry",
    response_model=ExperimentPublic,
    responses=LAUNCH_RESPONSES,
)
def retry_experiment(session: SessionDep, principal: ActorDep, experiment_id: RowId) -> Experiment:
    """Run a failed or cancelled experiment again; it resumes from its last epoch checkpoint."""
    experiment = find_experiment(session, experiment_id)
    ensure_can_modify(principal, experiment)
    return retry(session, experiment)


@router.get("/workers", response_model=list[WorkerPublic])
def list_workers(session: SessionDep) -> list[dict[str, Any]]:
    """Workers seen in the last minute, their device, and what each is running."""
    return list_online(session)


@router.patch("/experiments/{experiment_id:experiment}", response_model=ExperimentPublic)
def update_experiment(
    session: SessionDep, principal: ActorDep, experiment_id: RowId, changes: ExperimentUpdate
) -> Experiment:
    """Rename, retag or annotate an experiment."""
    experiment = find_experiment(session, experiment_id)
    ensure_can_modify(principal, experiment)
    return update(session, experiment, changes.model_dump(exclude_unset=True))


@router.post("/experiments/{experiment_id}/cancel", response_model=ExperimentPublic)
def cancel_experiment(session: SessionDep, principal: ActorDep, experiment_id: RowId) -> Experiment:
    experiment = find_experiment(session, experiment_id)
    ensure_can_modify(principal, experiment)
    return cancel(session, experiment)


@router.delete("/experiments/{experiment_id:experiment}", status_code=204)
def delete_experiment(session: SessionDep, principal: ActorDep, experiment_id: RowId) -> Response:
    """Delete a finished experiment with its metrics, evaluation and files."""
    experiment = find_experiment(session, experiment_id)
    ensure_can_modify(principal, experiment)
    delete(session, experiment)
    return Response(status_code=204)


@router.get(
    "/experiments/{experiment_id}/model",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_model(session: SessionDep, experiment_id: RowId) -> FileResponse:
    """The trained model as a `.keras` file (load with `keras.models.load_model`)."""
    experiment = find_experiment(session, experiment_id)
    path = get_settings().model_path(experiment_id)
    if not path.is_file():
        raise HTTPException(
            status_code=404,
            detail=f"experiment {experiment_id} has no trained model (status: {experiment.status})",
        )
    filename = f"cifarlab-{experiment_id}-{experiment.model}.keras"
    return FileResponse(path, media_type="application/octet-stream", filename=filename)


@router.get("/models", response_model=list[ModelPublic])
def list_models() -> list[dict[str, Any]]:
    return [
        {
            "name": info.name,
            "title": info.title,
            "family": info.family,
            "description": info.description,
            "hyperparameters_schema": info.hyperparameters.model_json_schema(),
        }
        for info in MODELS.values()
    ]


@router.get("/presets", response_model=list[Preset])
def list_presets() -> list[Preset]:
    """Ready specs: the original study's experiments (with its published test accuracy),
    quick ones for a laptop CPU, and recipes that go past the study."""
    return list(PRESETS.values())


async def takes_no_body(request: Request) -> None:
    """Refuses any body: the preset launch runs the preset as it is, and an override sent
    with it (``{"hyperparameters": {"epochs": -1}}``) was dropped in silence, a 201 for a
    run the sender did not ask for."""
    if (await request.body()).strip():
        name = request.path_params.get("name", "NAME")
        raise RequestValidationError([{
            "loc": ("body",), "type": "value_error",
            "msg": f"this route takes no body and launches preset {name} as it is; to change "
            f"its settings, POST /api/experiments with the preset's spec (GET /api/presets) "
            f"changed, or run: cifarlab launch --preset {name} --set key=value",
        }])  # fmt: skip


@router.post(
    "/presets/{name}/launch",
    status_code=201,
    response_model=ExperimentPublic,
    responses={**CREATED_EXPERIMENT, **LAUNCH_RESPONSES},
)
def launch_preset(
    session: SessionDep,
    principal: ActorDep,
    name: str,
    _no_body: Annotated[None, Depends(takes_no_body)],
) -> Experiment:
    """Launch a preset as it is (GET /api/presets lists them). The route takes no body; one
    is refused with a 422. To change a setting, POST /api/experiments with the preset's
    `spec` changed, or run `cifarlab launch --preset NAME --set key=value`."""
    preset = PRESETS.get(name)
    if preset is None:
        known = ", ".join(PRESETS)
        raise HTTPException(status_code=404, detail=f"no preset {name!r}; choose one of: {known}")
    return launch(session, preset.spec.model_dump(mode="json"), owner_id=principal.user_id)


def _failure(part: str, exc: Exception, detailed: bool) -> str:
    """The error names hosts, ports and users: logged always, answered to admins only."""
    logger.warning("health: %s unreachable: %s", part, exc)
    return f"error: {exc}" if detailed else "error"


def _is_admin(request: Request, session: Session) -> bool:
    try:
        user = identify(request, session).user
    except Exception:  # no database to read the user from: nobody can be known an admin
        return False
    return user is not None and user.is_admin


@public_router.get("/health", response_model=HealthPublic)
def health(request: Request, session: SessionDep) -> dict[str, Any]:
    """Database, broker and workers: what must be up for a launch to train. A failing part
    reads ``error``; signed-in admins see the error itself."""
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:
        session.rollback()
        database = _failure("database", exc, _is_admin(request, session))
    try:
        workers = online_workers()
        broker = "ok"
    except Exception as exc:
        workers, broker = [], _failure("broker", exc, _is_admin(request, session))
    healthy = database == "ok" and broker == "ok" and bool(workers)
    return {
        "status": "ok" if healthy else "degraded",
        "database": database,
        "broker": broker,
        "workers": workers,
    }
