"""Comparing experiments, importing published reports, and the misclassified gallery."""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from app.core.config import get_settings
from app.core.models import Evaluation, Experiment
from app.core.schemas import (
    COMPARED_IDS_PATTERN,
    CREATED_EXPERIMENT,
    ERROR_RESPONSES,
    ClassIndex,
    Count,
    ExperimentPublic,
    ReportImport,
    RowId,
)
from app.services import importing
from app.services.comparison import MAX_COMPARED, load_comparison, parse_ids
from app.services.seed_groups import MAX_GROUPED_IDS, MAX_GROUPS, load_seed_groups
from app.web.auth import ActorDep, viewer
from app.web.deps import HistoriesDep, SessionDep
from app.web.json_text import JsonText
from app.web.presentation import ComparisonPublic, comparison_public
from app.web.seed_groups_public import SeedGroupsPublic, seed_groups_public

router = APIRouter(
    prefix="/api", tags=["analysis"], dependencies=[Depends(viewer)], responses=ERROR_RESPONSES
)


@router.get("/compare", response_class=JsonText, response_model=ComparisonPublic | SeedGroupsPublic)
def compare(
    session: SessionDep,
    histories: HistoriesDep,
    ids: Annotated[
        str,
        Query(
            description=(
                "2 to 12 different experiment ids, comma-separated: 1,2,3; with group=seed, "
                f"up to {MAX_GROUPED_IDS} ids forming at most {MAX_GROUPS} seed groups"
            ),
            pattern=COMPARED_IDS_PATTERN,
        ),
    ],
    baseline: Annotated[
        RowId | None, Query(description="One of the ids: differences and tests are against it")
    ] = None,
    group: Annotated[
        Literal["seed"] | None,
        Query(description="seed: compare groups of runs that differ only in their seed"),
    ] = None,
) -> JsonText:
    """What the compare page shows: summaries, per-class table with best and deltas,
    differing hyperparameters, fair-comparison warnings, significance, diagnostics, curves
    and confusion matrices. With ``group=seed``: the seed groups the runs form, each as
    mean ± std over its seeds, and each group against the baseline's group."""
    limit = MAX_GROUPED_IDS if group == "seed" else MAX_COMPARED
    parsed = parse_ids(ids, limit=limit, baseline=baseline)
    if group == "seed":
        return JsonText(seed_groups_public(load_seed_groups(session, histories, parsed, baseline)))
    comparison = load_comparison(session, histories, parsed, baseline)[1]
    return JsonText(comparison_public(comparison))


@router.post(
    "/experiments/import",
    status_code=201,
    response_model=ExperimentPublic,
    responses=CREATED_EXPERIMENT,
)
def import_report(session: SessionDep, principal: ActorDep, body: ReportImport) -> Experiment:
    """Import a result from elsewhere: a scikit-learn classification_report as text."""
    return importing.import_report(session, body.model_dump(), owner_id=principal.user_id)


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
    true_class: Annotated[ClassIndex, Query(description="Row of the confusion matrix")],
    predicted_class: Annotated[ClassIndex, Query(description="Column of the matrix")],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Test images of one confusion-matrix cell, the most confident predictions first."""
    evaluation = _evaluation_with_predictions(session, experiment_id)
    classes = evaluation.classes
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
    """One test image as the experiment saw it, by its position in the evaluation. Cached a
    day by the browser only (``private``): the images may come from a team's own dataset and
    the request carried a cookie or token, so a shared proxy must not serve them to others."""
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
        headers={"Cache-Control": "private, max-age=86400"},
    )
