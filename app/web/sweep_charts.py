"""The sweep page's figures: parallel coordinates of the varied hyperparameters (and the
seed) against the sweep's metric, and one scatter per varied hyperparameter.

Pure: trials in, Plotly figure dicts out, so the page and its live poll draw the same thing
and tests read the figures as data. Parallel coordinates have no log axis, so a log-scaled
axis (``SweepSpec.log_scaled``) carries log10 values with tick labels in the original units;
text and yes/no axes carry category indices with their labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from app.core.sweeps import SweepSpec
from app.services.sweeps import TrialView
from app.web.charts import FONT, GRID_COLOR, plot_text, with_export_name
from app.web.forms import shown_value

METRIC_TITLES = {"val_accuracy": "best val accuracy", "val_loss": "best val loss"}
MAX_LISTED_TICKS = 8
"""An axis with more distinct values than this gets evenly spaced ticks, not one per value."""
NO_SCORES = "No trial has finished an epoch yet."
POINT_COLOR = "#2563eb"


def rounded(value: float | None) -> float | None:
    """Six decimals: metrics are stored as float32, whose noise digits only cost bytes."""
    return None if value is None else round(value, 6)


def metric_title(spec: SweepSpec) -> str:
    return METRIC_TITLES[spec.pruning.metric]


def _layout(height: int) -> dict[str, Any]:
    return {
        "font": FONT,
        "height": height,
        "margin": {"l": 56, "r": 24, "t": 24, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }


def _note(layout: dict[str, Any], text: str) -> dict[str, Any]:
    """An empty chart that says why it is empty, until the first trial scores."""
    layout["annotations"] = [
        {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5,
         "y": 0.5, "font": {"color": "#656d76", "size": 13}}
    ]  # fmt: skip
    layout["xaxis"] = {"visible": False}
    layout["yaxis"] = {"visible": False}
    return layout


def _label(value: float) -> str:
    return f"{value:.3g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _log_ticks(values: Sequence[float]) -> list[float]:
    """Each distinct value when there are few, else the powers of ten they span."""
    distinct = sorted(set(values))
    if len(distinct) <= MAX_LISTED_TICKS:
        return distinct
    low, high = math.floor(math.log10(distinct[0])), math.ceil(math.log10(distinct[-1]))
    return [10.0**exponent for exponent in range(low, high + 1)]


def _span(low: float, high: float) -> list[float]:
    """An axis range; a single value sits in the middle of one unit."""
    return [low, high] if low < high else [low - 0.5, high + 0.5]


def dimension(
    label: str, values: Sequence[Any], *, log: bool, domain: Sequence[Any]
) -> dict[str, Any]:
    """One parallel-coordinates axis: numbers as they are (log10 where ``log``), anything
    else as category indices labelled with the values. Ticks and range come from ``domain``,
    every trial's value, so the axes stay put as more trials score."""
    if domain and all(_is_number(v) for v in domain):
        distinct = sorted(set(domain))
        if log and distinct[0] > 0:
            ticks = _log_ticks(distinct)
            return {
                "label": f"{label} (log)",
                "values": [math.log10(v) for v in values],
                "range": _span(math.log10(distinct[0]), math.log10(distinct[-1])),
                "tickvals": [math.log10(t) for t in ticks],
                "ticktext": [_label(t) for t in ticks],
            }
        axis: dict[str, Any] = {
            "label": label, "values": list(values), "range": _span(distinct[0], distinct[-1]),
        }  # fmt: skip
        if len(distinct) <= MAX_LISTED_TICKS:
            axis["tickvals"] = distinct
            axis["ticktext"] = [_label(v) if isinstance(v, float) else str(v) for v in distinct]
        return axis
    categories = sorted({shown_value(v) for v in domain})
    index = {category: i for i, category in enumerate(categories)}
    return {
        "label": label,
        "values": [index[shown_value(v)] for v in values],
        "tickvals": list(range(len(categories))),
        "ticktext": [plot_text(c) for c in categories],
        "range": [-0.5, max(len(categories) - 0.5, 0.5)],
    }


def _scored(trials: Sequence[TrialView]) -> list[TrialView]:
    return [t for t in trials if t.best_metric is not None]


def parallel_coordinates(spec: SweepSpec, trials: Sequence[TrialView]) -> dict[str, Any]:
    """One line per trial that has a metric, coloured by it (the best brightest)."""
    scored = _scored(trials)
    layout = _layout(400)
    if not scored:
        return {"data": [], "layout": _note(layout, NO_SCORES)}
    layout["margin"] = {"l": 64, "r": 64, "t": 56, "b": 24}
    metric = [rounded(t.best_metric) for t in scored]
    dimensions = [
        dimension(
            name,
            [t.point.get(name) for t in scored],
            log=spec.log_scaled(name),
            domain=[t.point.get(name) for t in trials],
        )  # fmt: skip
        for name in [*spec.varied, "seed"]
    ]
    dimensions.append({"label": metric_title(spec), "values": metric})
    trace = {
        "type": "parcoords",
        "dimensions": dimensions,
        "line": {
            "color": metric,
            "colorscale": "Viridis",
            "reversescale": spec.pruning.metric == "val_loss",  # lower loss is better
            "showscale": True,
            "colorbar": {"thickness": 10},
        },
        "labelangle": 0,
    }
    return {"data": [trace], "layout": layout}


def scatter(spec: SweepSpec, name: str, trials: Sequence[TrialView]) -> dict[str, Any]:
    """The metric against one varied hyperparameter, one point per trial with a metric."""
    scored = _scored(trials)
    layout = _layout(300)
    if not scored:
        return {"data": [], "layout": _note(layout, NO_SCORES)}
    values = [t.point.get(name) for t in scored]
    numeric = all(_is_number(v) for v in values)
    layout["xaxis"] = {
        "title": {"text": name},
        "type": "log" if numeric and spec.log_scaled(name) else "-",
        "gridcolor": GRID_COLOR,
        "zeroline": False,
    }
    domain = sorted({t.point[name] for t in trials if _is_number(t.point.get(name))})
    if numeric and len(domain) <= MAX_LISTED_TICKS:  # a grid: a tick at each of its values
        layout["xaxis"]["tickvals"] = domain
        layout["xaxis"]["ticktext"] = [
            _label(v) if isinstance(v, float) else str(v) for v in domain
        ]
    layout["yaxis"] = {"title": {"text": metric_title(spec)}, "gridcolor": GRID_COLOR}
    trace = {
        "type": "scatter",
        "mode": "markers",
        "x": values if numeric else [shown_value(v) for v in values],
        "y": [rounded(t.best_metric) for t in scored],
        "customdata": [t.id for t in scored],
        "marker": {"size": 9, "color": POINT_COLOR, "opacity": 0.75},
        "hovertemplate": "trial #%{customdata}<br>%{x}: %{y:.4f}<extra></extra>",
    }
    return {"data": [trace], "layout": layout}


def sweep_figures(
    sweep_id: int, spec: SweepSpec, trials: Sequence[TrialView]
) -> dict[str, dict[str, Any]]:
    """Every chart of the page by element id, each saved as ``cifarlab-sweep-<id>-<chart>``."""
    figures = {"parcoords-chart": parallel_coordinates(spec, trials)}
    for index, name in enumerate(spec.varied):
        figures[f"scatter-{index}"] = scatter(spec, name, trials)
    return {
        chart_id: with_export_name(figure, f"cifarlab-sweep-{sweep_id}-{chart_id}")
        for chart_id, figure in figures.items()
    }
