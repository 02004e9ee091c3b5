"""The compare page's F1-per-class figure: grouped bars for a few runs, a classes × runs
heatmap past ``BARS_UP_TO`` runs, where ten groups of a dozen thin bars cannot be read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.web.charts import BLUES, FONT, class_rows, per_class_f1_figure, plot_text

BARS_UP_TO = 6  # runs; more and the bars of one class are too thin to tell apart


def run_label(experiment_id: int) -> str:
    """A run's short label wherever its full name does not fit: "#12" tells apart runs whose
    names share a long prefix ("seed: efficientnet…"), which a cut name cannot."""
    return f"#{experiment_id}"


def draws_heatmap(runs: int) -> bool:
    """Whether ``f1_figure`` draws this many runs as a heatmap (the page gives it more room)."""
    return runs > BARS_UP_TO


def f1_figure(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """F1 per class for the compare page: bars up to ``BARS_UP_TO`` runs, a heatmap past it.
    ``comparison`` as ``ComparisonPublic.model_dump()`` gives it."""
    if draws_heatmap(len(comparison["experiments"])):
        return f1_heatmap_figure(comparison)
    return per_class_f1_figure(comparison)


def f1_heatmap_figure(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """One row per class, one column per run (labelled "#id", its name on hover), each cell
    its F1 on one 0-1 scale: the best run of a class is the darkest cell of its row."""
    rows = class_rows(comparison["per_class"])
    experiments = comparison["experiments"]
    z = [
        [row["values"].get(experiment["id"], {}).get("f1-score") for experiment in experiments]
        for row in rows
    ]
    names = [plot_text(experiment["name"]) for experiment in experiments]
    heatmap = {
        "type": "heatmap",
        "z": z,
        "x": [run_label(experiment["id"]) for experiment in experiments],
        "y": [plot_text(row["row"]) for row in rows],
        "customdata": [names for _ in rows],
        "text": [["" if value is None else f"{value:.2f}" for value in line] for line in z],
        "texttemplate": "%{text}",
        "colorscale": BLUES,
        "zmin": 0,
        "zmax": 1,
        "xgap": 1,
        "ygap": 1,
        "colorbar": {"title": {"text": "F1"}, "thickness": 12},
        "hovertemplate": "<b>%{customdata}</b> (%{x})<br>%{y}: F1 %{z:.3f}<extra></extra>",
    }
    layout = {
        "title": {"text": "F1 per class", "x": 0, "xanchor": "left", "font": {"size": 15}},
        "font": FONT,
        "margin": {"l": 96, "r": 16, "t": 48, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "xaxis": {"title": {"text": "Run"}, "type": "category", "side": "bottom"},
        "yaxis": {"type": "category", "autorange": "reversed"},
    }
    return {"data": [heatmap], "layout": layout}
