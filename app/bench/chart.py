"""Bench figures as an SVG bar chart, written by the bench commands themselves (``--chart``)
so that the charts in docs/benchmarks.md come from the same command as the numbers.

Plain SVG text: no plotting library, no browser, and a file that diffs and renders on any
Git host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
BAR = 14
GAP = 6
LABEL_WIDTH = 190
PLOT_WIDTH = 420
RIGHT_MARGIN = 90


@dataclass(frozen=True)
class BarChart:
    """Groups of bars: ``values[group][series]``; ``goals[group]``, where given, is drawn as
    a dashed mark across that group's bars."""

    title: str
    unit: str
    values: Mapping[str, Mapping[str, float]]
    goals: Mapping[str, float] | None = None

    def series(self) -> list[str]:
        names: list[str] = []
        for bars in self.values.values():
            names += [name for name in bars if name not in names]
        return names


def _legend(names: list[str]) -> tuple[list[str], int]:
    """Keys left to right, wrapping before the right edge; returns them and their bottom."""
    items: list[str] = []
    x, y = LABEL_WIDTH, 34
    right = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN - 10
    for index, name in enumerate(names):
        width = 24 + 7 * len(name)
        if x + width > right and x > LABEL_WIDTH:
            x, y = LABEL_WIDTH, y + 18
        if name == "goal":
            items.append(f'<line x1="{x + 6}" x2="{x + 6}" y1="{y}" y2="{y + 14}" class="goal"/>')
        else:
            color = PALETTE[index % len(PALETTE)]
            items.append(f'<rect x="{x}" y="{y + 1}" width="12" height="12" fill="{color}"/>')
        items.append(f'<text x="{x + 16}" y="{y + 12}">{escape(name)}</text>')
        x += width
    return items, (y + 14 if names else 24)


def render(chart: BarChart) -> str:
    series = chart.series()
    goals = chart.goals or {}
    drawn = [value for bars in chart.values.values() for value in bars.values()]
    largest = max(drawn + list(goals.values()))
    scale = PLOT_WIDTH / (largest * 1.05 or 1)
    keyed = series if len(series) > 1 else []  # one series needs no key: the unit says it
    legend, legend_bottom = _legend(keyed + (["goal"] if goals else []))
    y = legend_bottom + 14
    parts: list[str] = []
    for group, bars in chart.values.items():
        group_height = len(series) * (BAR + 2)
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + group_height / 2 + 4:.0f}" '
            f'text-anchor="end">{escape(group)}</text>'
        )
        for index, name in enumerate(series):
            if name not in bars:
                continue
            value = bars[name]
            top = y + index * (BAR + 2)
            width = max(value * scale, 1)
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{top}" width="{width:.1f}" height="{BAR}" '
                f'fill="{PALETTE[index % len(PALETTE)]}"><title>{escape(name)}: '
                f"{value:,.1f} {escape(chart.unit)}</title></rect>"
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + width + 4:.1f}" y="{top + BAR - 3}" '
                f'class="value">{value:,.1f}</text>'
            )
        if group in goals:
            x = LABEL_WIDTH + goals[group] * scale
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 3}" y2="{y + group_height + 1}" '
                f'class="goal"><title>goal: {goals[group]:,.0f} {escape(chart.unit)}</title></line>'
            )
        y += group_height + GAP * 2
    width = LABEL_WIDTH + PLOT_WIDTH + RIGHT_MARGIN
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 24:.0f}" '
        f'viewBox="0 0 {width} {y + 24:.0f}" font-family="sans-serif" font-size="12">\n'
        "<style>.value{fill:#444;font-size:11px}"
        ".goal{stroke:#000;stroke-width:1.5;stroke-dasharray:4 3}</style>\n"
        f'<rect width="100%" height="100%" fill="#fff"/>\n'
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(chart.title)}</text>\n'
        + "\n".join(legend + parts)
        + f'\n<text x="{LABEL_WIDTH}" y="{y + 14:.0f}" class="value">{escape(chart.unit)}</text>\n'
        "</svg>\n"
    )


def write(chart: BarChart, path: Path | None) -> None:
    """Nothing without a path: the bench commands' ``--chart`` is optional."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(chart))


def web_chart(figures: Mapping[str, Any]) -> BarChart:
    """p95 latency per endpoint, a bar per database and process count, against the goals."""
    values: dict[str, dict[str, float]] = {}
    goals: dict[str, float] = {}
    for database in ("sqlite", "postgresql"):
        result = figures.get(database, {})
        for run in result.get("runs", []):
            processes = run["processes"]
            series = f"{database}, {processes} process{'es' if processes > 1 else ''}"
            for endpoint, measured in run["endpoints"].items():
                values.setdefault(endpoint, {})[series] = measured["p95_ms"]
                goals[endpoint] = measured["goal_p95_ms"]
    return BarChart(
        title=f"Dashboard p95 latency, {figures['clients']} concurrent clients, "
        f"{figures['experiments']:,} experiments",
        unit="ms (shorter is better; dashes: goal)",
        values=values,
        goals=goals,
    )


def train_chart(figures: Mapping[str, Any]) -> BarChart:
    return BarChart(
        title=f"Training throughput, custom CNN, {figures['train_size']:,} images",
        unit="training images per second (longer is better)",
        values={f["label"]: {"images/s": f["images_per_second"]}
                for f in figures["variants"].values()},
    )  # fmt: skip


def memory_chart(figures: Mapping[str, Any]) -> BarChart:
    gigabyte = 1000.0
    return BarChart(
        title=f"Memory, {figures['model']} at {figures['image_size']} px, "
        f"{figures['train_images']:,} training images",
        unit="MB",
        values={
            "peak while training": {"MB": figures["peak_rss_mb"]},
            "peak of the data pipeline": {"MB": figures["rss_after_pipeline_mb"]},
            "uint8 images in memory": {"MB": figures["uint8_images_mb"]},
            "a resized float32 copy (never made)": {
                "MB": figures["resized_float32_set_would_need_gb"] * gigabyte
            },
        },
    )
