"""Comparing experiments, importing published reports, and the misclassified gallery."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, undefer

from app.core import crud
from app.core.config import get_settings
from app.core.models import INTEGER_MAX, Evaluation, Experiment
from app.core.report_import import parse_for_import
from app.core.schemas import (
    CREATED_EXPERIMENT,
    ERROR_RESPONSES,
    Count,
    ExperimentPublic,
    FieldError,
    ReportImport,
    RowId,
    SpecError,
)
from app.services.comparison import Comparison, build_comparison, history
from app.services.history_cache import HistoryCache
from app.web.auth import ActorDep, viewer
from app.web.deps import HistoriesDep, SessionDep
from app.web.json_text import JsonText
from app.web.presentation import ComparisonPublic, comparison_public

router = APIRouter(
    prefix="/api", tags=["analysis"], dependencies=[Depends(viewer)], responses=ERROR_RESPONSES
)
MAX_COMPARED = 12


def _ids_error(message: str) -> SpecError:
    return SpecError([FieldError(field="ids", message=message)])


def parse_ids(ids: str) -> list[int]:
    """`1,2,3` -> [1, 2, 3]: two to MAX_COMPARED distinct ids, in the order given. Raises
    ``SpecError`` (422) naming ``ids``."""
    parts = [part.strip() for part in ids.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise _ids_error(f"write experiment ids as 1,2,3 (got {ids[:100]!r})")
    if any(len(part) > 10 or not 1 <= int(part) <= INTEGER_MAX for part in parts):
        raise _ids_error(f"experiment ids are 1 to {INTEGER_MAX}")
    parsed = [int(part) for part in parts]
    unique = list(dict.fromkeys(parsed))
    if not 2 <= len(unique) <= MAX_COMPARED:
        raise _ids_error(f"compare 2 to {MAX_COMPARED} different experiments (got {len(unique)})")
    return unique


def load_for_comparison(session: Session, ids: list[int]) -> list[Experiment]:
    """With each evaluation's predictions, in the same query (one row each: a join costs
    less than a second query); labels load for the baseline only, when read."""
    rows = session.scalars(
        select(Experiment)
        .where(Experiment.id.in_(ids))
        .options(joinedload(Experiment.evaluation).options(undefer(Evaluation.predictions)))
    ).all()
    found = {row.id: row for row in rows}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise HTTPException(404, detail=f"no experiment with id {', '.join(missing)}")
    return [found[i] for i in ids]


def load_comparison(
    session: Session, histories: HistoryCache, ids: list[int], baseline: int | None
) -> tuple[list[Experiment], Comparison]:
    """The experiments in the order given, and what the compare page and API show of them.
    Epochs are read only for experiments whose history is not already kept."""
    experiments = load_for_comparison(session, ids)
    kept = {e.id: h for e in experiments if (h := histories.get(e)) is not None}
    missing = [e for e in experiments if e.id not in kept]
    if missing:
        epochs = crud.list_epochs_of(session=session, experiment_ids=[e.id for e in missing])
        for experiment in missing:
            kept[experiment.id] = history(experiment, epochs[experiment.id])
            histories.put(experiment, kept[experiment.id])
    return experiments, build_comparison(experiments, kept, baseline)


@router.get("/compare", response_class=JsonText, response_model=ComparisonPublic)
def compare(
    session: SessionDep,
    histories: HistoriesDep,
    ids: Annotated[
        str,
        Query(
            description="2 to 12 different experiment ids, comma-separated: 1,2,3",
            pattern=r"^\s*\d{1,10}(\s*,\s*\d{1,10})+\s*$",
        ),
    ],
    baseline: Annotated[RowId | None, Query(description="Deltas and tests are against it")] = None,
) -> JsonText:
    """What the compare page shows: summaries, per-class table with best and deltas,
    differing hyperparameters, fair-comparison warnings, significance, diagnostics, curves
    and confusion matrices."""
    comparison = load_comparison(session, histories, parse_ids(ids), baseline)[1]
    return JsonText(comparison_public(comparison))


@router.post(
    "/experiments/import",
    status_code=201,
    response_model=ExperimentPublic,
    responses=CREATED_EXPERIMENT,
)
def import_report(session: SessionDep, principal: ActorDep, body: ReportImport) -> Experiment:
    """Import a result from elsewhere: a scikit-learn classification_report as text."""
    imported, errors = parse_for_import(body.report_text, body.confusion_matrix_text)
    if imported is None:
        raise SpecError(errors)
    experiment = crud.import_experiment(
        session=session, name=body.name, tags=list(body.tags), notes=body.notes,
        imported=imported, owner_id=principal.user_id,
    )  # fmt: skip
    session.commit()
    return experiment


def _evaluation_with_predictions(session: Session, experiment_id: RowId) -> Evaluation:
    evaluation = session.scalar(
        select(Evaluation)
        .where(Evaluation.experiment_id == experiment_id)
        .options(undefer(Evaluation.predictions), undefer(Evaluation.labels),
                 undefer(Evaluation.confidences))
    )  # fmt: skip
    if evaluation is None or evaluation.predictions is None:
        raise HTTPException(
            404, detail=f"experiment {experiment_id} has no per-image test predictions"
        )
    return evaluation


@router.get("/experiments/{experiment_id}/gallery")
def gallery(
    session: SessionDep,
    experiment_id: RowId,
    true_class: Annotated[Count, Query(description="Row of the confusion matrix")],
    predicted_class: Annotated[Count, Query(description="Column of the matrix")],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Test images of one confusion-matrix cell, the most confident predictions first."""
    evaluation = _evaluation_with_predictions(session, experiment_id)
    classes = evaluation.classes
    if true_class >= len(classes) or predicted_class >= len(classes):
        field = "true_class" if true_class >= len(classes) else "predicted_class"
        message = f"classes are numbered 0..{len(classes) - 1}"
        raise SpecError([FieldError(field=field, message=message)])
    labels = np.asarray(evaluation.labels)
    predictions = np.asarray(evaluation.predictions)
    confidences = np.asarray(evaluation.confidences)
    positions = np.flatnonzero((labels == true_class) & (predictions == predicted_class))
    positions = positions[np.argsort(-confidences[positions], kind="stable")]
    return {
        "true_class": classes[true_class],
        "predicted_class": classes[predicted_class],
        "total": len(positions),
        "items": [
            {
                "position": int(i),
                "confidence": float(confidences[i]),
                "image_url": f"/api/experiments/{experiment_id}/test-images/{i}.png",
            }
            for i in positions[:limit]
        ],
    }


@lru_cache(maxsize=4)
def _test_images(path: Path) -> np.ndarray:
    return np.load(path, mmap_mode="r")


@router.get(
    "/experiments/{experiment_id}/test-images/{position}.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def test_image(session: SessionDep, experiment_id: RowId, position: Count) -> Response:
    """One test image as the experiment saw it, by its position in the evaluation."""
    evaluation = session.get(Evaluation, experiment_id)
    if evaluation is None or evaluation.test_set_fingerprint is None:
        raise HTTPException(404, detail=f"experiment {experiment_id} has no stored test images")
    path = get_settings().test_images_path(evaluation.test_set_fingerprint)
    if not path.is_file():
        raise HTTPException(404, detail="the test images of this experiment were removed")
    images = _test_images(path)
    if not 0 <= position < len(images):
        raise HTTPException(404, detail=f"position must lie in 0..{len(images) - 1}")
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(images[position])).save(buffer, format="PNG")
    return Response(
        buffer.getvalue(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=86400"},
    )
