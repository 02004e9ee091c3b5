"""An evaluation written back as the report import reads it (``app.core.report_import``), so
an experiment exported from one cifarlab imports into another: ``cifarlab export`` then
``cifarlab import``, or the body of POST /api/experiments/import.

The text is scikit-learn's ``classification_report`` layout, each number with as few digits
(2 to 4) as keep it exact, so a two-digit published report exports as two digits again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.models import IMPORTED_MODEL
from app.core.report_import import SUMMARY_ROWS

MIN_DIGITS, MAX_DIGITS = 2, 4
_METRICS = ("precision", "recall", "f1-score")


def _digits(report: Mapping[str, Any]) -> int:
    """The fewest decimals, from 2 to 4, that write every score of ``report`` exactly."""
    scores = [report["accuracy"]] if "accuracy" in report else []
    scores += [row[m] for row in report.values() if isinstance(row, Mapping) for m in _METRICS]
    for digits in range(MIN_DIGITS, MAX_DIGITS):
        if all(round(score, digits) == score for score in scores):
            return digits
    return MAX_DIGITS


def report_text(report: Mapping[str, Any], classes: Sequence[str]) -> str:
    """``report`` (sklearn's ``output_dict`` shape) as sklearn prints it: the classes in
    ``classes``' order, then accuracy and the averages it has."""
    digits = _digits(report)
    summaries = [name for name in SUMMARY_ROWS if name in report]
    width = max(len(name) for name in [*classes, *summaries, "accuracy"])
    header = " " * width + " " + "".join(f" {name:>9}" for name in (*_METRICS, "support"))

    def row(name: str, values: Mapping[str, Any]) -> str:
        scores = "".join(f" {values[metric]:>9.{digits}f}" for metric in _METRICS)
        return f"{name:>{width}} {scores} {int(values['support']):>9}"

    lines = [header, "", *(row(name, report[name]) for name in classes), ""]
    if "accuracy" in report:
        test_size = int(report["macro avg"]["support"])
        blank = " " * 9
        accuracy = f"{report['accuracy']:>9.{digits}f}"
        lines.append(f"{'accuracy':>{width}}  {blank} {blank} {accuracy} {test_size:>9}")
    lines += [row(name, report[name]) for name in summaries]
    return "\n".join(lines) + "\n"


def matrix_text(matrix: Sequence[Sequence[int]]) -> str:
    """One line per true class, counts separated by spaces."""
    return "\n".join(" ".join(str(count) for count in row) for row in matrix) + "\n"


def import_body(experiment: Mapping[str, Any], evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """What POST /api/experiments/import takes, from an experiment and its evaluation as the
    API returns them: the model and the settings too, so the copy's list filters, columns and
    compare find what the original trained."""
    matrix = evaluation.get("confusion_matrix")
    model = experiment.get("model")
    return {
        "name": experiment["name"],
        "model": None if model == IMPORTED_MODEL else model,
        "hyperparameters": (experiment.get("spec") or {}).get("hyperparameters") or {},
        "report_text": report_text(evaluation["report"], evaluation["classes"]),
        "confusion_matrix_text": None if matrix is None else matrix_text(matrix),
        "tags": list(experiment.get("tags") or []),
        "notes": experiment.get("notes") or "",
    }
