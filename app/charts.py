"""Pure functions: training data -> Plotly figure dicts and table rows.

Figures are plain dicts (no ``plotly.graph_objects``) so building one costs microseconds and
the result goes straight to JSON for the page, where plotly.js draws it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from app.schemas import EpochMetricPublic

Metric = Literal["accuracy", "loss"]

TRAIN_COLOR = "#2563eb"
VALIDATION_COLOR = "#ea580c"
FONT = {"family": "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
GRID_COLOR = "#e5e7eb"
# matplotlib's "Blues", light to dark; plotly.js's own "Blues" runs dark to light.
BLUES = [[0.0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
WAITING = "Waiting for the first epoch…"
AVERAGE_ROWS = ("macro avg", "weighted avg")
SUMMARY_KEYS = frozenset({"accuracy", *AVERAGE_ROWS})


class ReportRow(TypedDict):
    """One line of scikit-learn's text report; ``None`` is a blank cell, as sklearn prints it."""

    label: str
    kind: Literal["class", "accuracy", "average"]
    precision: float | None
    recall: float | None
    f1_score: float | None
    support: int | None


def _value(row: EpochMetricPublic | Mapping[str, Any], key: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(key)
    return getattr(row, key)


def _base_layout(title: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "font": FONT,
        "margin": {"l": 56, "r": 16, "t": 48, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }


def _epoch_axis(epoch_count: int, total_epochs: int | None) -> dict[str, Any]:
    """Whole-number ticks (no "epoch 1.5"); with a known total the axis shows the whole run."""
    span = max(total_epochs or 0, epoch_count, 1)
    axis: dict[str, Any] = {
        "title": {"text": "Epoch"},
        "tick0": 1,
        "dtick": max(1, math.ceil(span / 10)),
        "gridcolor": GRID_COLOR,
        "zeroline": False,
    }
    if total_epochs:
        axis["range"] = [0.75, total_epochs + 0.25]
    return axis


def _curve(name: str, x: list[int], y: list[Any], color: str, value_format: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": x,
        "y": y,
        "line": {"color": color, "width": 2},
        "marker": {"size": 6},
        "hovertemplate": f"%{{y:{value_format}}}",
    }


def _mark_waiting(layout: dict[str, Any]) -> None:
    """Without points Plotly picks a -1..4 axis; show 0..1 and say why it is empty. The live
    page drops the note and turns autorange back on when the first epoch arrives."""
    layout["yaxis"]["range"] = [0, 1]
    layout["annotations"] = [
        {
            "text": WAITING,
            "showarrow": False,
            "xref": "paper",
            "yref": "paper",
            "x": 0.5,
            "y": 0.5,
            "font": {"color": "#656d76", "size": 13},
        }
    ]


def curves_figure(
    epochs: Sequence[EpochMetricPublic | Mapping[str, Any]],
    metric: Metric,
    *,
    total_epochs: int | None = None,
) -> dict[str, Any]:
    """Train and validation ``metric`` per epoch: trace 0 is train, trace 1 validation.

    The trace order is part of the contract: the live page appends to traces [0, 1].
    """
    x = [int(_value(row, "epoch")) for row in epochs]
    train = [_value(row, metric) for row in epochs]
    validation = [_value(row, f"val_{metric}") for row in epochs]
    is_accuracy = metric == "accuracy"
    value_format = ".2%" if is_accuracy else ".4f"
    layout = _base_layout(metric.capitalize())
    layout.update(
        xaxis=_epoch_axis(len(x), total_epochs),
        yaxis={
            "title": {"text": metric.capitalize()},
            "gridcolor": GRID_COLOR,
            "zeroline": False,
            **({"tickformat": "~%"} if is_accuracy else {}),
        },
        hovermode="x unified",
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
    )
    if not x:
        _mark_waiting(layout)
    return {
        "data": [
            _curve("train", x, train, TRAIN_COLOR, value_format),
            _curve("validation", x, validation, VALIDATION_COLOR, value_format),
        ],
        "layout": layout,
    }


def confusion_matrix_figure(
    classes: Sequence[str], matrix: Sequence[Sequence[int]]
) -> dict[str, Any]:
    """Heatmap with x = predicted and y = true class; row 0 (the first class) is on top,
    as in scikit-learn's ConfusionMatrixDisplay, and each cell shows its count."""
    heatmap = {
        "type": "heatmap",
        "z": [list(row) for row in matrix],
        "x": list(classes),
        "y": list(classes),
        "text": [[str(count) for count in row] for row in matrix],
        "texttemplate": "%{text}",
        "colorscale": BLUES,
        "showscale": False,
        "xgap": 1,
        "ygap": 1,
        "hovertemplate": "true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>",
    }
    layout = _base_layout("Confusion matrix")
    layout.update(
        xaxis={"title": {"text": "Predicted"}, "type": "category", "side": "bottom"},
        yaxis={"title": {"text": "True"}, "type": "category", "autorange": "reversed"},
        margin={"l": 96, "r": 16, "t": 48, "b": 96},
    )
    return {"data": [heatmap], "layout": layout}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _class_row(
    label: str, values: Mapping[str, Any], kind: Literal["class", "average"]
) -> ReportRow:
    support = values.get("support")
    return ReportRow(
        label=label,
        kind=kind,
        precision=_number(values.get("precision")),
        recall=_number(values.get("recall")),
        f1_score=_number(values.get("f1-score")),
        support=None if support is None else int(support),
    )


def report_rows(report: Mapping[str, Any], classes: Sequence[str] | None = None) -> list[ReportRow]:
    """scikit-learn's ``classification_report`` dict -> rows in its text order: each class,
    then accuracy (only f1-score and the total support filled), macro avg, weighted avg."""
    labels = list(classes) if classes is not None else [k for k in report if k not in SUMMARY_KEYS]
    rows = [_class_row(label, report[label], "class") for label in labels if label in report]
    if "accuracy" in report:
        total = report.get("macro avg", {}).get("support")
        rows.append(
            ReportRow(
                label="accuracy",
                kind="accuracy",
                precision=None,
                recall=None,
                f1_score=float(report["accuracy"]),
                support=None if total is None else int(total),
            )
        )
    rows.extend(_class_row(key, report[key], "average") for key in AVERAGE_ROWS if key in report)
    return rows
