"""Test-set predictions -> confusion matrix, scikit-learn's per-class report, and per-image
results kept for significance tests and the misclassified gallery."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix


@dataclass(frozen=True)
class EvaluationResult:
    classes: list[str]
    confusion_matrix: list[list[int]]
    report: dict[str, Any]
    labels: list[int]
    predictions: list[int]
    confidences: list[float]


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
        labels=[int(label) for label in y_true],
        predictions=[int(prediction) for prediction in y_pred],
        confidences=[round(float(p), 4) for p in probabilities[np.arange(len(y_pred)), y_pred]],
    )


def _plain(report: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars -> Python numbers, so the report stores as JSON."""
    return {
        key: {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
        for key, value in report.items()
    }


def fingerprint_test_set(images: np.ndarray, labels: np.ndarray) -> str:
    """Identifies the exact test images and their order: equal fingerprints mean two
    experiments' per-image predictions can be paired (McNemar's test)."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


def save_test_images(images: np.ndarray, path: Path) -> None:
    """Keep the test images once per test set, for the gallery (the web has no dataset
    loader); written beside the target, then renamed."""
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(temporary, np.ascontiguousarray(images, dtype=np.uint8))
    os.replace(temporary, path)
