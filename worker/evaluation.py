"""Test-set predictions -> confusion matrix and scikit-learn's per-class report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


@dataclass(frozen=True)
class EvaluationResult:
    classes: list[str]
    confusion_matrix: list[list[int]]
    report: dict[str, Any]


def evaluate_predictions(
    y_true: np.ndarray, probabilities: np.ndarray, class_names: tuple[str, ...]
) -> EvaluationResult:
    """The same table the original study published, computed the same way."""
    y_pred = np.argmax(probabilities, axis=1)
    labels = list(range(len(class_names)))
    report = classification_report(
        y_true,
        y_pred,
        labels=labels,
        target_names=list(class_names),
        output_dict=True,
        zero_division=0,
    )
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    return EvaluationResult(
        classes=list(class_names),
        confusion_matrix=matrix.astype(int).tolist(),
        report=_plain(report),
    )


def _plain(report: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars -> Python numbers, so the report stores as JSON."""
    return {
        key: {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
        for key, value in report.items()
    }
