"""Importing a published result: a scikit-learn classification_report pasted as text. The
API (JSON body) and the import form (its strings) call the same ``import_report``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.core.report_import import ImportedReport, parse_for_import
from app.core.schemas import FieldError, ReportImport, SpecError


def parse_report_import(data: Mapping[str, Any]) -> tuple[ReportImport, ImportedReport]:
    """The fields as ``ReportImport`` and the parsed report; raises ``SpecError`` naming each
    field to fix, all of them at once (a bad name does not hide a bad report)."""
    body: ReportImport | None = None
    errors: list[FieldError] = []
    try:
        body = ReportImport.model_validate(data)
    except ValidationError as exc:
        errors = SpecError.from_validation_error(exc).errors
    imported: ImportedReport | None = None
    if not any(error.field == "report_text" for error in errors):
        report_text = data.get("report_text")
        matrix_text = data.get("confusion_matrix_text")
        imported, report_errors = parse_for_import(str(report_text or ""), matrix_text)
        errors += report_errors
    if body is None or imported is None:
        raise SpecError(errors)
    return body, imported


def import_report(session: Session, data: Mapping[str, Any], *, owner_id: int | None) -> Experiment:
    """Validate, parse, store as ``imported``, commit. Raises ``SpecError`` before anything
    is stored."""
    body, imported = parse_report_import(data)
    experiment = crud.import_experiment(
        session=session, name=body.name, tags=list(body.tags), notes=body.notes,
        imported=imported, owner_id=owner_id, model=body.model,
        hyperparameters=body.hyperparameters,
    )  # fmt: skip
    session.commit()
    return experiment
