"""Pure functions: training data -> Plotly figure dicts and table rows.

Figures are plain dicts (no ``plotly.graph_objects``) so building one costs microseconds and
the result goes straight to JSON for the page, where plotly.js draws it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal, TypedDict

from app.core.models import Experiment
from app.core.schemas import EpochMetricPublic
from app.core.time_to_accuracy import elapsed_seconds

Metric = Literal["accuracy", "loss"]

TRAIN_COLOR = "#2563eb"
VALIDATION_COLOR = "#ea580c"
BOUNDARY_COLOR = "#667085"
LEARNING_RATE_COLOR = "#7c3aed"
GAP_COLOR = "#0f766e"
FINE_TUNE = "fine_tune"
FONT = {"family": "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
GRID_COLOR = "#e5e7eb"
# matplotlib's "Blues", light to dark; plotly.js's own "Blues" runs dark to light.
BLUES = [[0.0, "#f7fbff"], [0.25, "#c6dbef"], [0.5, "#6baed6"], [0.75, "#2171b5"], [1.0, "#08306b"]]
WAITING = "Waiting for the first epoch…"
NO_EPOCHS = "No epoch was recorded: the run ended before its first one."
TIME_AXIS_TITLE = "Training time (minutes inside epochs)"
# Plotly's default palette. An experiment's colour is a function of its id alone, so it keeps
# one colour on every chart, in every selection and on every page it appears on.
PALETTE = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a",
    "#19d3f3", "#ff6692", "#b6e880", "#ff97ff", "#fecb52",
)  # fmt: skip
AVERAGE_ROWS = ("macro avg", "weighted avg")
SUMMARY_KEYS = frozenset({"accuracy", *AVERAGE_ROWS})


LIVE_TRACES: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy", "val_accuracy"),
    "loss": ("loss", "val_loss"),
    "learning_rate": ("learning_rate",),
}
"""Each epoch chart's traces in order, by the epoch row field each one plots: the figures are
built in this order and the live page extends trace ``i`` with field ``LIVE_TRACES[chart][i]``
of each new epoch (passed to it in the page data)."""


class ReportRow(TypedDict):
    """One line of scikit-learn's text report; ``None`` is a blank cell, as sklearn prints it."""

    label: str
    kind: Literal["class", "accuracy", "average"]
    precision: float | None
    recall: float | None
    f1_score: float | None
    support: int | None


def experiment_color(experiment_id: int) -> str:
    """The experiment's colour wherever it is drawn: the same run is the same colour in two
    different compare selections, not "the second one picked". Ten colours repeat every ten
    ids; the legend and hover labels name each run where two share one."""
    return PALETTE[experiment_id % len(PALETTE)]


def curve_controls(*, smooth: bool, log_y: bool) -> dict[str, Any]:
    """``layout.meta`` of a figure whose curves static/curve_controls.js may smooth, put on
    a log axis, or draw against training time: each trace gives every point's epoch and
    cumulative training minutes as ``customdata`` ``[epoch, minutes]``."""
    return {
        "curveControls": {
            "smooth": smooth,
            "logY": log_y,
            "time": True,
            "timeTitle": TIME_AXIS_TITLE,
        }
    }


def with_metrics_url(figure: dict[str, Any], url: str) -> dict[str, Any]:
    """Where the page reads the seconds of epochs that arrive live (the stream gives the
    chart only each epoch's values), to place them when x is training time."""
    figure["layout"]["meta"]["curveControls"]["metricsUrl"] = url
    return figure


class _Timing:
    """A plain epoch row read as ``elapsed_seconds`` reads one."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.epoch = int(row["epoch"])
        self.val_accuracy = row.get("val_accuracy")
        self.seconds = row.get("seconds")


def epoch_minutes(epochs: Sequence[EpochMetricPublic | Mapping[str, Any]]) -> list[list[Any]]:
    """``[epoch, minutes of training up to and including it]`` per row, as curves'
    ``customdata``: the x of each point when the page draws against training time."""
    rows = [_Timing(row) if isinstance(row, Mapping) else row for row in epochs]
    elapsed = elapsed_seconds(rows)
    return [[row.epoch, elapsed[row.epoch] / 60] for row in rows]


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


def _curve(
    name: str, y: list[Any], timed: list[list[Any]], color: str, value_format: str
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": name,
        "x": [epoch for epoch, _ in timed],
        "y": y,
        "customdata": timed,
        "meta": {"kind": name},
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


def mark_no_epochs(figure: dict[str, Any]) -> dict[str, Any]:
    """An empty chart of a run that has ended says no epoch is coming, not that it waits."""
    for annotation in figure["layout"].get("annotations", []):
        if annotation.get("text") == WAITING:
            annotation["text"] = NO_EPOCHS
    return figure


def curves_figure(
    epochs: Sequence[EpochMetricPublic | Mapping[str, Any]],
    metric: Metric,
    *,
    total_epochs: int | None = None,
) -> dict[str, Any]:
    """Train and validation ``metric`` per epoch, in the order ``LIVE_TRACES`` names."""
    train_key, validation_key = LIVE_TRACES[metric]
    x = [int(_value(row, "epoch")) for row in epochs]
    train = [_value(row, train_key) for row in epochs]
    validation = [_value(row, validation_key) for row in epochs]
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
    layout["meta"] = curve_controls(smooth=True, log_y=not is_accuracy)
    if not x:
        _mark_waiting(layout)
    timed = epoch_minutes(epochs)
    return {
        "data": [
            _curve("train", train, timed, TRAIN_COLOR, value_format),
            _curve("validation", validation, timed, VALIDATION_COLOR, value_format),
        ],
        "layout": layout,
    }


def row_normalized(matrix: Sequence[Sequence[int]]) -> list[list[float]]:
    """Each true class's row as fractions of its images, so test sets of different sizes
    (100 images or the study's 10,000) share one 0-1 colour scale."""
    return [[count / total if (total := sum(row)) else 0.0 for count in row] for row in matrix]


def confusion_matrix_figure(
    classes: Sequence[str],
    matrix: Sequence[Sequence[int]],
    *,
    normalized: bool = False,
    zmax: float | None = None,
    title: str = "Confusion matrix",
) -> dict[str, Any]:
    """Heatmap with x = predicted and y = true class; row 0 (the first class) is on top,
    as in scikit-learn's ConfusionMatrixDisplay, and each cell shows its count (or its share
    of the row). A given ``zmax`` puts several matrices on one colour scale."""
    counts = [list(row) for row in matrix]
    z: list[list[Any]] = row_normalized(counts) if normalized else counts
    labels = [plot_text(name) for name in classes]
    share = "<br>%{z:.1%} of the true class" if normalized else ""
    heatmap = {
        "type": "heatmap",
        "z": z,
        "x": labels,
        "y": labels,
        "customdata": counts,
        "text": [[_cell_text(v, normalized) for v in row] for row in z],
        "texttemplate": "%{text}",
        "colorscale": BLUES,
        "zmin": 0,
        "zmax": zmax if zmax is not None else (1 if normalized else _largest(counts)),
        "showscale": False,
        "xgap": 1,
        "ygap": 1,
        "hovertemplate": f"true %{{y}}<br>predicted %{{x}}<br>%{{customdata}} images{share}"
        "<extra></extra>",
    }
    layout = _base_layout(title)
    layout.update(
        xaxis={"title": {"text": "Predicted"}, "type": "category", "side": "bottom"},
        yaxis={"title": {"text": "True"}, "type": "category", "autorange": "reversed"},
        margin={"l": 96, "r": 16, "t": 48, "b": 96},
    )
    return {"data": [heatmap], "layout": layout}


def _cell_text(value: float, normalized: bool) -> str:
    """Counts as sklearn prints them; shares blank where zero, so the mistakes stand out."""
    if not normalized:
        return str(value)
    return f"{value:.2f}" if value else ""


def _largest(matrix: Sequence[Sequence[float]]) -> float:
    return max((value for row in matrix for value in row), default=0) or 1


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


def plot_text(text: str) -> str:
    """Plotly draws a few HTML tags in names, titles and tick labels (``<b>``, ``<a href>``)
    and decodes entities: escaping user text makes it show exactly as typed, never as markup."""
    return html.escape(text, quote=False)


def with_export_name(figure: dict[str, Any], filename: str) -> dict[str, Any]:
    """The modebar's camera button saves a PNG; name it after the page and chart, not
    "newplot". The page script merges ``config`` into its plot config."""
    figure["config"] = {"toImageButtonOptions": {"filename": filename, "format": "png", "scale": 2}}
    return figure


def exported_as(stem: str, charts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Charts by element id (``accuracy-chart``), each saved as ``<stem>-accuracy.png``."""
    return {
        chart_id: with_export_name(figure, f"{stem}-{chart_id.removesuffix('-chart')}")
        for chart_id, figure in charts.items()
    }


# --- phases and learning rate on one experiment's curves ---------------------------------------


def fine_tune_start(epochs: Sequence[EpochMetricPublic]) -> int | None:
    """The first fine-tuning epoch that follows an epoch of another phase, if any."""
    for previous, row in pairwise(epochs):
        if row.phase == FINE_TUNE and previous.phase != FINE_TUNE:
            return row.epoch
    return None


def _vertical_marks(
    x: float, text: str, color: str, dash: str, name: str, side: str = "left"
) -> dict[str, dict[str, Any]]:
    """A vertical line at ``x`` across the plot and its label, on ``side`` of the line."""
    line = {"color": color, "width": 1.5, "dash": dash}
    return {
        "shape": {"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x,
                  "y0": 0, "y1": 1, "line": line, "name": name},
        "annotation": {"text": text, "xref": "x", "yref": "paper", "x": x, "y": 1,
                       "xanchor": side, "yanchor": "top", "xshift": 3 if side == "left" else -3,
                       "showarrow": False,
                       "bgcolor": "rgba(255,255,255,0.85)", "borderpad": 2,
                       "font": {"color": color, "size": 11}},
    }  # fmt: skip


def boundary_marks(start_epoch: int) -> dict[str, dict[str, Any]]:
    """A dashed line between the last frozen-base epoch and the first fine-tuning one, and
    its label. The live page copies these when fine-tuning starts while it watches."""
    return _vertical_marks(start_epoch - 0.5, "fine-tuning", BOUNDARY_COLOR, "dash", FINE_TUNE)


def _add_marks(figure: dict[str, Any], marks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    layout = figure["layout"]
    layout["shapes"] = [*layout.get("shapes", []), marks["shape"]]
    layout["annotations"] = [*layout.get("annotations", []), marks["annotation"]]
    return figure


def with_boundary(figure: dict[str, Any], start_epoch: int | None) -> dict[str, Any]:
    return figure if start_epoch is None else _add_marks(figure, boundary_marks(start_epoch))


def learning_rate_figure(
    epochs: Sequence[EpochMetricPublic], total_epochs: int | None
) -> dict[str, Any]:
    """The loss chart's frame (epoch axis, waiting note) with one trace on a log axis: a
    plateau cut or a fine-tuning phase shows as a step down, drawn between the two epochs."""
    figure = curves_figure(epochs, "loss", total_epochs=total_epochs)
    layout = figure["layout"]
    layout["title"]["text"] = "Learning rate"
    layout["showlegend"] = False
    layout["meta"] = curve_controls(smooth=False, log_y=False)
    layout["yaxis"].update(title={"text": "Learning rate"}, type="log", exponentformat="power")
    if not epochs:
        layout["yaxis"]["range"] = [-5, -1]  # log10: 1e-5 to 1e-1 while waiting
    (key,) = LIVE_TRACES["learning_rate"]
    trace = {
        **figure["data"][0],
        "name": "learning rate",
        "meta": {"kind": "learning_rate"},
        "y": [_value(row, key) for row in epochs],
        "line": {"color": LEARNING_RATE_COLOR, "width": 2, "shape": "hvh"},
        "hovertemplate": "%{y:.2e}<extra></extra>",
    }
    figure["data"] = [trace]
    return figure


# --- diagnostics -------------------------------------------------------------------------------


def _gap_axis() -> dict[str, Any]:
    """Points of accuracy; the zero line is where train and validation agree."""
    return {
        "title": {"text": "Train − validation"},
        "tickformat": "~%",
        "gridcolor": GRID_COLOR,
        "zeroline": True,
        "zerolinecolor": "#98a2b3",
        "zerolinewidth": 1.5,
    }


def gap_figure(
    gap: Sequence[Sequence[float]], best_epoch: int | None, *, total_epochs: int | None = None
) -> dict[str, Any]:
    """One run's generalization gap per epoch (``[epoch, gap]`` pairs, as diagnostics give
    them), with its best-validation epoch marked: a gap that keeps widening after that epoch
    is what overfitting looks like."""
    x = [int(epoch) for epoch, _ in gap]
    layout = _base_layout("Generalization gap")
    layout.update(xaxis=_epoch_axis(len(x), total_epochs), yaxis=_gap_axis(), showlegend=False)
    if not x:
        _mark_waiting(layout)
        layout["yaxis"]["range"] = [-0.1, 0.3]
    trace = {
        "type": "scatter", "mode": "lines+markers", "name": "gap", "x": x,
        "y": [value for _, value in gap], "line": {"color": GAP_COLOR, "width": 2},
        "marker": {"size": 6}, "fill": "tozeroy", "fillcolor": "rgba(15,118,110,0.08)",
        "hovertemplate": "epoch %{x}: train %{y:.1%} above validation<extra></extra>",
    }  # fmt: skip
    figure = {"data": [trace], "layout": layout}
    if best_epoch is not None:
        # Labelled left of its line: the best epoch (lowest validation loss, what early stopping
        # keeps) is often the last one, at the plot's edge.
        marks = _vertical_marks(
            best_epoch, "lowest val loss", "#067647", "dot", "best", side="right"
        )
        _add_marks(figure, marks)
    return figure


# --- the compare page: one colour per experiment on every chart --------------------------------
#
# Each trace's ``meta`` names its experiment and its kind ("train", "validation", "mark",
# "phase", "gap", "bar"), so the page can hide an experiment everywhere at once, or every
# train curve, without knowing how a figure was built.

MARK_SYMBOLS = {"best": "star", "lr": "triangle-down", "stop": "x"}
MARK_TEXT = {
    "best": "best validation epoch",
    "lr": "learning rate lowered",
    "stop": "stopped early",
}


def _meta(experiment_id: int, kind: str) -> dict[str, Any]:
    return {"experiment": experiment_id, "kind": kind}


COMPARE_LEGEND = {
    "orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0, "yanchor": "bottom",
}  # fmt: skip
"""Run names at the bottom of the chart, one entry per experiment (its legend group): a click
hides all of that run's traces. ``LEGEND_MARGIN`` holds the ticks and axis title; the page
adds the legend's measured height to it as the legend wraps (``fitLegend`` in charts.js)."""
LEGEND_MARGIN = {"l": 56, "r": 16, "t": 48, "b": 56}


_MINUTES_HOVER = ", %{customdata[1]:.1f} min"


def _compare_layout(title: str, longest: int, yaxis: dict[str, Any]) -> dict[str, Any]:
    layout = _base_layout(title)
    layout.update(
        xaxis=_epoch_axis(longest, None),
        yaxis=yaxis,
        # A hidden 0-1 axis for the vertical phase lines, so they span any metric's range.
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        showlegend=True,
        legend=COMPARE_LEGEND,
        margin=LEGEND_MARGIN,
        hovermode="closest",
    )
    if not longest:
        _mark_waiting(layout)
    return layout


def _in_legend(experiment: Mapping[str, Any], shown: bool) -> dict[str, Any]:
    """One legend entry per experiment, on its main line; its other traces join its group."""
    return {"legendgroup": str(experiment["id"]), "showlegend": shown}


def _experiment_line(
    experiment: Mapping[str, Any],
    kind: str,
    timed: list[list[Any]],
    y: list[Any],
    value_format: str,
) -> dict[str, Any]:
    """``timed`` gives each point's ``[epoch, minutes]``: x is the epoch, and the hover names
    the run, the epoch and the minutes whichever the page draws along x."""
    train = kind == "train"
    timing = _MINUTES_HOVER if any(minutes is not None for _, minutes in timed) else ""
    return {
        "type": "scatter", "mode": "lines+markers", "name": plot_text(experiment["name"]),
        "x": [epoch for epoch, _ in timed], "y": y, "customdata": timed,
        "meta": _meta(experiment["id"], kind), **_in_legend(experiment, not train),
        "line": {"color": experiment["color"], "width": 1.5 if train else 2.5,
                 "dash": "dot" if train else "solid"},
        "marker": {"size": 4 if train else 5},
        "hovertemplate": f"<b>%{{fullData.name}}</b> · {kind}<br>epoch %{{customdata[0]}}"
        f"{timing}: %{{y:{value_format}}}<extra></extra>",
    }  # fmt: skip


def _marks_trace(
    experiment: Mapping[str, Any],
    diagnosis: Mapping[str, Any],
    values: dict[int, Any],
    minutes: dict[int, Any],
) -> dict[str, Any] | None:
    """Best epoch, learning-rate cuts and the early stop, sitting on the validation curve."""
    wanted = [("best", diagnosis.get("best_epoch")), ("stop", diagnosis.get("early_stop_epoch"))]
    wanted += [("lr", epoch) for epoch in diagnosis.get("lr_reductions", [])]
    marks = [(kind, e) for kind, e in wanted if e is not None and values.get(e) is not None]
    if not marks:
        return None
    return {
        "type": "scatter", "mode": "markers", "name": plot_text(experiment["name"]),
        "x": [epoch for _, epoch in marks], "y": [values[epoch] for _, epoch in marks],
        "customdata": [[epoch, minutes[epoch]] for _, epoch in marks],
        "text": [MARK_TEXT[kind] for kind, _ in marks],
        "meta": _meta(experiment["id"], "mark"), **_in_legend(experiment, False),
        "marker": {"symbol": [MARK_SYMBOLS[kind] for kind, _ in marks], "size": 12,
                   "color": experiment["color"], "line": {"color": "#ffffff", "width": 1}},
        "hovertemplate": "<b>%{fullData.name}</b><br>%{text}: epoch %{customdata[0]}"
        "<extra></extra>",
    }  # fmt: skip


def _phase_trace(
    experiment: Mapping[str, Any], boundary: int | None, minutes: dict[int, Any]
) -> dict[str, Any] | None:
    """A vertical line between the last frozen-base epoch and the first fine-tuning one: by
    time, where the last frozen-base epoch ended."""
    if boundary is None:
        return None
    x = boundary - 0.5
    at = [x, minutes.get(boundary - 1, 0.0)]
    return {
        "type": "scatter", "mode": "lines", "name": plot_text(experiment["name"]),
        "x": [x, x], "y": [0, 1], "customdata": [at, at], "yaxis": "y2",
        "meta": _meta(experiment["id"], "phase"), **_in_legend(experiment, False),
        "line": {"color": experiment["color"], "width": 1.5, "dash": "dash"},
        "hovertemplate": f"<b>%{{fullData.name}}</b><br>fine-tuning from epoch {boundary}"
        "<extra></extra>",
    }  # fmt: skip


def _timed_curve(rows: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """``[epoch, minutes]`` per compared curve point (from its ``training_seconds``)."""
    return [[int(row["epoch"]), row["training_seconds"] / 60] for row in rows]


def _experiment_curves(
    experiment: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    diagnosis: Mapping[str, Any],
    metric: Metric,
) -> list[dict[str, Any]]:
    timed = _timed_curve(rows)
    x = [epoch for epoch, _ in timed]
    minutes = dict(timed)
    value_format = ".2%" if metric == "accuracy" else ".4f"
    validation = [row.get(f"val_{metric}") for row in rows]
    train = [row.get(metric) for row in rows]
    traces = [
        _experiment_line(experiment, "train", timed, train, value_format),
        _experiment_line(experiment, "validation", timed, validation, value_format),
        _marks_trace(experiment, diagnosis, dict(zip(x, validation, strict=True)), minutes),
        _phase_trace(experiment, diagnosis.get("phase_boundary"), minutes),
    ]
    return [trace for trace in traces if trace is not None]


def comparison_curves_figure(comparison: Mapping[str, Any], metric: Metric) -> dict[str, Any]:
    """Every experiment's train (dotted) and validation (solid) ``metric`` per epoch in its
    colour, from ``build_comparison``, with its best epoch (star), learning-rate cuts
    (triangles), early stop (cross) and the start of fine-tuning (dashed line) marked; a
    legend names the runs, and the page may smooth, log or time the curves."""
    data: list[dict[str, Any]] = []
    longest = 0
    for experiment in comparison["experiments"]:
        rows = comparison["curves"].get(experiment["id"], [])
        longest = max([longest, *(int(row["epoch"]) for row in rows)])
        diagnosis = comparison["diagnostics"][experiment["id"]]
        data += _experiment_curves(experiment, rows, diagnosis, metric) if rows else []
    yaxis = {"title": {"text": metric.capitalize()}, "gridcolor": GRID_COLOR, "zeroline": False}
    if metric == "accuracy":
        yaxis["tickformat"] = "~%"
    layout = _compare_layout(metric.capitalize(), longest, yaxis)
    layout["meta"] = curve_controls(smooth=True, log_y=metric == "loss")
    return {"data": data, "layout": layout}


def comparison_gap_figure(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """Each experiment's train - validation accuracy per epoch: the gap that opens when a
    model starts to memorise its training images."""
    data = []
    longest = 0
    for experiment in comparison["experiments"]:
        gap = comparison["diagnostics"][experiment["id"]]["generalization_gap"]
        if not gap:
            continue
        timed = [[int(epoch), None] for epoch, _ in gap]
        longest = max(longest, *(int(epoch) for epoch, _ in gap))
        line = _experiment_line(experiment, "gap", timed, [value for _, value in gap], ".1%")
        data.append({**line, "line": {"color": experiment["color"], "width": 2}})
    return {"data": data, "layout": _compare_layout("Generalization gap", longest, _gap_axis())}


def comparison_time_figure(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """Validation accuracy against cumulative training minutes (time inside epochs), one
    line per experiment in its colour, its test accuracy a diamond where training ended: a
    model that is better per epoch but slower per epoch shows where it really pays off."""
    data: list[dict[str, Any]] = []
    for experiment in comparison["experiments"]:
        rows = comparison["curves"].get(experiment["id"], [])
        if not rows:
            continue
        timed = _timed_curve(rows)
        line = _experiment_line(
            experiment, "validation", timed, [row.get("val_accuracy") for row in rows], ".2%"
        )
        minutes = [minute for _, minute in timed]
        line["x"] = minutes
        data.append(line)
        if experiment.get("test_accuracy") is not None:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": plot_text(experiment["name"]),
                    "x": [minutes[-1]],
                    "y": [experiment["test_accuracy"]],
                    "meta": _meta(experiment["id"], "test"),
                    **_in_legend(experiment, False),
                    "marker": {
                        "symbol": "diamond",
                        "size": 11,
                        "color": experiment["color"],
                        "line": {"color": "#ffffff", "width": 1},
                    },
                    "hovertemplate": "<b>%{fullData.name}</b><br>test accuracy %{y:.2%} after "
                    "%{x:.1f} min of training<extra></extra>",
                }  # fmt: skip
            )
    layout = _base_layout("Accuracy against training time")
    layout.update(
        xaxis={
            "title": {"text": TIME_AXIS_TITLE},
            "gridcolor": GRID_COLOR,
            "zeroline": False,
            "rangemode": "tozero",
        },
        yaxis={
            "title": {"text": "Accuracy"},
            "tickformat": "~%",
            "gridcolor": GRID_COLOR,
            "zeroline": False,
        },
        showlegend=True,
        legend=COMPARE_LEGEND,
        margin=LEGEND_MARGIN,
        hovermode="closest",
    )
    if not data:
        _mark_waiting(layout)
    return {"data": data, "layout": layout}


def class_rows(per_class: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The per-class table's class rows: those before its accuracy row."""
    labels = [row["row"] for row in per_class]
    end = labels.index("accuracy") if "accuracy" in labels else len(labels)
    return list(per_class[:end])


def per_class_f1_figure(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """F1 per class as grouped bars, one colour per experiment: where one model wins is
    visible at a glance (cat and dog are where CIFAR-10 models differ most)."""
    rows = class_rows(comparison["per_class"])
    labels = [plot_text(row["row"]) for row in rows]
    data = [
        {
            "type": "bar",
            "name": plot_text(experiment["name"]),
            "x": labels,
            "y": [row["values"].get(experiment["id"], {}).get("f1-score") for row in rows],
            "marker": {"color": experiment["color"]},
            "meta": _meta(experiment["id"], "bar"),
            "hovertemplate": "<b>%{fullData.name}</b><br>%{x}: F1 %{y:.3f}<extra></extra>",
        }  # fmt: skip
        for experiment in comparison["experiments"]
    ]
    layout = _base_layout("F1 per class")
    layout.update(
        barmode="group",
        bargap=0.25,
        bargroupgap=0.05,
        showlegend=False,
        xaxis={"type": "category"},
        yaxis={"title": {"text": "F1"}, "range": [0, 1], "gridcolor": GRID_COLOR},
    )
    return {"data": data, "layout": layout}


def comparison_confusion_figures(comparison: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Each evaluated experiment's matrix as counts and row-normalised, titled with its name
    in its colour; all counts share one scale (the largest cell), all shares 0 to 1."""
    matrices = comparison["confusion_matrices"]
    largest = max((_largest(entry["matrix"]) for entry in matrices.values()), default=1)
    figures = {}
    for experiment in comparison["experiments"]:
        entry = matrices.get(experiment["id"])
        if entry is None:
            continue
        variants = {}
        for mode, normalized, zmax in (("counts", False, largest), ("normalized", True, 1)):
            figure = confusion_matrix_figure(
                entry["classes"], entry["matrix"], normalized=normalized, zmax=zmax,
                title=plot_text(experiment["name"]),
            )  # fmt: skip
            _small_multiple(figure, experiment["color"])
            variants[mode] = figure
        figures[experiment["id"]] = variants
    return figures


def _cells(matrix: Sequence[Sequence[int]], normalized: bool) -> list[list[float]]:
    return row_normalized(matrix) if normalized else [[float(v) for v in row] for row in matrix]


def _small_multiple(figure: dict[str, Any], color: str) -> None:
    """Several matrices side by side: smaller text, slanted class names, the title in the
    experiment's colour."""
    figure["data"][0]["textfont"] = {"size": 10}
    layout = figure["layout"]
    layout["title"]["font"]["color"] = color
    layout["xaxis"]["tickangle"] = -45
    layout["margin"] = {"l": 84, "r": 8, "t": 40, "b": 100}


def _signed(value: float, normalized: bool) -> str:
    if value == 0:
        return ""
    return f"{value:+.2f}" if normalized else f"{value:+.0f}"


def _verdict(advantage: float, normalized: bool) -> str:
    """A cell's difference in words, for its hover: which run does better, by how much."""
    if advantage == 0:
        return "same"
    amount = f"{abs(advantage):.1%}" if normalized else f"{abs(advantage):.0f}"
    return f"{'A' if advantage > 0 else 'B'} better by {amount}"


A_BETTER_COLOR = "#2166ac"
B_BETTER_COLOR = "#b2182b"
DIVERGING = [[0.0, B_BETTER_COLOR], [0.5, "#f7f7f7"], [1.0, A_BETTER_COLOR]]
"""The difference matrix's one convention: blue where A does better, red where B does."""


def difference_figure(
    classes: Sequence[str],
    first: Sequence[Sequence[int]],
    second: Sequence[Sequence[int]],
    *,
    names: tuple[str, str],
    normalized: bool,
) -> dict[str, Any]:
    """How much better A does than B in each cell, on a diverging scale centred on zero, so
    one colour means one thing everywhere: blue, A better; red, B better. On the diagonal
    (right answers) that is A - B; off it (mistakes) B - A, since fewer mistakes is better.
    The hover gives both matrices' own cells."""
    a, b = (_cells(matrix, normalized) for matrix in (first, second))
    size = len(a)
    z = [
        [(x - y) if i == j else (y - x) for j, (x, y) in enumerate(zip(row_a, row_b, strict=True))]
        for i, (row_a, row_b) in enumerate(zip(a, b, strict=True))
    ]
    limit = max((abs(value) for row in z for value in row), default=0) or 1
    labels = [plot_text(name) for name in classes]
    share = ".1%" if normalized else ".0f"
    heatmap = {
        "type": "heatmap", "z": z, "x": labels, "y": labels,
        "customdata": [
            [[a[i][j], b[i][j], _verdict(z[i][j], normalized)] for j in range(size)]
            for i in range(size)
        ],
        "text": [[_signed(value, normalized) for value in row] for row in z],
        "texttemplate": "%{text}", "colorscale": DIVERGING, "zmin": -limit, "zmax": limit,
        "zmid": 0, "xgap": 1, "ygap": 1,
        "colorbar": {"thickness": 12, "outlinewidth": 0, "tickvals": [-limit, 0, limit],
                     "ticktext": ["B better", "same", "A better"]},
        "hovertemplate": f"true %{{y}}<br>predicted %{{x}}<br>A: %{{customdata[0]:{share}}} · "
        f"B: %{{customdata[1]:{share}}}<br>%{{customdata[2]}}<extra></extra>",
    }  # fmt: skip
    first_name, second_name = (plot_text(name) for name in names)
    figure = confusion_matrix_figure(classes, first, title=f"A: {first_name} · B: {second_name}")
    figure["data"] = [heatmap]
    layout = figure["layout"]
    layout["margin"] = {**layout["margin"], "b": 120}
    layout["annotations"] = [
        {
            "text": f"<span style='color:{A_BETTER_COLOR}'>■ blue: A better</span> · "
            f"<span style='color:{B_BETTER_COLOR}'>■ red: B better</span> · on the diagonal "
            "more right, off it fewer of that mistake",
            "showarrow": False, "xref": "paper", "yref": "paper", "x": 0, "xanchor": "left",
            "y": 0, "yanchor": "top", "yshift": -84,
            "font": {"size": 11, "color": "#475467"},
        }
    ]  # fmt: skip
    return figure


def has_gallery(experiment: Experiment) -> bool:
    """Per-image predictions and stored test images come together; imported reports have
    neither, so their matrix cells open nothing."""
    evaluation = experiment.evaluation
    return evaluation is not None and evaluation.test_set_fingerprint is not None


# --- seed groups: mean curves with bands, F1 and accuracy with their spread ---------------------

BANDS = ("std", "ci")  # ±1 standard deviation over seeds, or the 95 % t-interval of the mean
BAND_ALPHA = 0.18


def _translucent(color: str, alpha: float) -> str:
    """``#rrggbb`` as ``rgba(r, g, b, alpha)``: a band in its group's colour, see-through."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _band_trace(
    group: Mapping[str, Any], points: Sequence[Mapping[str, Any]], band: str
) -> dict[str, Any]:
    """One closed polygon, upper edge forward and lower edge back; where fewer than two seeds
    reached an epoch the band closes on the mean."""
    x = [int(p["epoch"]) for p in points]
    if band == "std":
        upper = [p["mean"] + (p["std"] or 0.0) for p in points]
        lower = [p["mean"] - (p["std"] or 0.0) for p in points]
    else:
        upper = [p["mean"] if p["ci_high"] is None else p["ci_high"] for p in points]
        lower = [p["mean"] if p["ci_low"] is None else p["ci_low"] for p in points]
    return {
        "type": "scatter", "mode": "lines", "name": plot_text(group["label"]),
        "x": x + x[::-1], "y": upper + lower[::-1], "fill": "toself",
        "fillcolor": _translucent(group["color"], BAND_ALPHA), "line": {"width": 0},
        "hoverinfo": "skip", "visible": band == BANDS[0],
        "meta": {"group": group["id"], "kind": "band", "band": band},
    }  # fmt: skip


def _mean_trace(
    group: Mapping[str, Any], points: Sequence[Mapping[str, Any]], value_format: str
) -> dict[str, Any]:
    return {
        "type": "scatter", "mode": "lines+markers", "name": plot_text(group["label"]),
        "x": [int(p["epoch"]) for p in points], "y": [p["mean"] for p in points],
        "customdata": [[p["n"], p["std"]] for p in points],
        "line": {"color": group["color"], "width": 2.5}, "marker": {"size": 5},
        "meta": {"group": group["id"], "kind": "mean"},
        "hovertemplate": f"<b>%{{fullData.name}}</b><br>epoch %{{x}}: mean %{{y:{value_format}}}"
        f" ± %{{customdata[1]:{value_format}}} (n = %{{customdata[0]}})<extra></extra>",
    }  # fmt: skip


def group_curves_figure(groups: Sequence[Mapping[str, Any]], metric: str) -> dict[str, Any]:
    """Each seed group's mean validation ``metric`` per epoch in its colour, with both bands
    drawn (±1 std shown, the 95 % CI hidden): the page switches between them in place.
    ``groups`` as ``SeedGroupPublic.model_dump()`` gives them."""
    value_format = ".2%" if "accuracy" in metric else ".4f"
    data: list[dict[str, Any]] = []
    longest = 0
    for group in groups:
        points = group["curves"].get(metric, [])
        if not points:
            continue
        longest = max(longest, *(int(p["epoch"]) for p in points))
        data += [_band_trace(group, points, band) for band in BANDS]
        data.append(_mean_trace(group, points, value_format))
    title = ("Validation " + metric.removeprefix("val_")).capitalize()
    layout = _base_layout(f"{title}, mean over seeds")
    yaxis: dict[str, Any] = {"title": {"text": title}, "gridcolor": GRID_COLOR, "zeroline": False}
    if "accuracy" in metric:
        yaxis["tickformat"] = "~%"
    layout.update(
        xaxis=_epoch_axis(longest, None), yaxis=yaxis, showlegend=False, hovermode="closest"
    )
    if not longest:
        _mark_waiting(layout)
    return {"data": data, "layout": layout}


def group_f1_figure(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """F1 per class as grouped bars of the mean over seeds, one colour per group, with ±1
    std whiskers: a class where the whiskers overlap is no win for either group."""
    classes: list[str] = []
    for group in groups:
        classes += [name for name in group["per_class_f1"] if name not in classes]
    data = []
    for group in groups:
        figures = [group["per_class_f1"].get(name) or {} for name in classes]
        data.append(
            {
                "type": "bar", "name": plot_text(group["label"]),
                "x": [plot_text(name) for name in classes],
                "y": [f.get("mean") for f in figures],
                "error_y": {"type": "data", "array": [f.get("std") or 0 for f in figures],
                            "visible": True, "color": "#344054", "thickness": 1.2},
                "customdata": [f.get("n", 0) for f in figures],
                "marker": {"color": group["color"]},
                "meta": {"group": group["id"], "kind": "bar"},
                "hovertemplate": "<b>%{fullData.name}</b><br>%{x}: F1 %{y:.3f} "
                "(n = %{customdata})<extra></extra>",
            }
        )  # fmt: skip
    layout = _base_layout("F1 per class, mean ± std over seeds")
    layout.update(
        barmode="group", bargap=0.25, bargroupgap=0.05, showlegend=False,
        xaxis={"type": "category"},
        yaxis={"title": {"text": "F1"}, "range": [0, 1.05], "gridcolor": GRID_COLOR},
    )  # fmt: skip
    return {"data": data, "layout": layout}


def group_accuracy_figure(groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each seed's test accuracy as a dot beside its group's mean ± std: the spread the
    difference between groups is weighed against, seen."""
    data = []
    for group in groups:
        accuracy = group["test_accuracy"]
        label = plot_text(group["label"])
        data.append(
            {
                "type": "scatter", "mode": "markers", "name": label,
                "x": [label] * len(accuracy["values"]), "y": accuracy["values"],
                "marker": {"color": _translucent(group["color"], 0.55), "size": 9},
                "meta": {"group": group["id"], "kind": "seed"},
                "hovertemplate": "<b>%{fullData.name}</b><br>one seed: %{y:.2%}<extra></extra>",
            }
        )  # fmt: skip
        if accuracy["mean"] is not None:
            data.append(
                {
                    "type": "scatter", "mode": "markers", "name": label,
                    "x": [label], "y": [accuracy["mean"]],
                    "error_y": {"type": "data", "array": [accuracy["std"] or 0],
                                "visible": True, "color": group["color"], "thickness": 2},
                    "marker": {"color": group["color"], "size": 14, "symbol": "line-ew-open",
                               "line": {"width": 3, "color": group["color"]}},
                    "meta": {"group": group["id"], "kind": "mean"},
                    "hovertemplate": f"<b>%{{fullData.name}}</b><br>mean %{{y:.2%}} ± "
                    f"{(accuracy['std'] or 0) * 100:.2f} points (n = {accuracy['n']})"
                    "<extra></extra>",
                }
            )  # fmt: skip
    layout = _base_layout("Test accuracy per seed, and mean ± std")
    layout.update(
        showlegend=False, hovermode="closest", xaxis={"type": "category"},
        yaxis={"title": {"text": "Test accuracy"}, "tickformat": "~%", "gridcolor": GRID_COLOR},
    )  # fmt: skip
    return {"data": data, "layout": layout}
