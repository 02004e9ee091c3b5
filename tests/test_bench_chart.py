"""The bench commands' --chart: an SVG whose bars are the measured figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from app.bench.chart import BarChart, render, train_chart, web_chart, write

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_are_proportional_and_goals_drawn() -> None:
    chart = BarChart(
        title="p95 <latency>", unit="ms",
        values={"list": {"a": 50.0, "b": 100.0}, "compare": {"a": 200.0}},
        goals={"list": 100.0},
    )  # fmt: skip
    svg = render(chart)
    root = ET.fromstring(svg)  # well-formed, names escaped
    widths = [
        float(r.get("width")) for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None
    ]  # type: ignore[arg-type]
    assert len(widths) == 3
    assert widths[1] == 2 * widths[0] and widths[2] == 4 * widths[0]
    goals = [line for line in root.iter(f"{SVG}line") if line.find(f"{SVG}title") is not None]
    assert len(goals) == 1
    assert "p95 &lt;latency&gt;" in svg


def test_web_chart_has_a_bar_per_database_process_count_and_endpoint(tmp_path: Path) -> None:
    def run(processes: int, p95: float) -> dict:
        endpoint = {"p95_ms": p95, "goal_p95_ms": 100}
        return {
            "processes": processes,
            "endpoints": {"list_page": endpoint, "metrics_api": endpoint},
        }

    figures = {
        "clients": 20, "experiments": 1000,
        "sqlite": {"runs": [run(1, 90.0), run(2, 45.0)]},
        "postgresql": {"status": "skipped"},
    }  # fmt: skip
    chart = web_chart(figures)
    assert chart.values["list_page"] == {"sqlite, 1 process": 90.0, "sqlite, 2 processes": 45.0}
    assert chart.goals == {"list_page": 100, "metrics_api": 100}
    path = tmp_path / "charts" / "web.svg"
    write(chart, path)
    titled = [r for r in ET.fromstring(path.read_text()).iter(f"{SVG}rect") if len(r)]
    assert len(titled) == 4  # two endpoints x two runs; the legend's squares carry no title


def test_train_chart_reads_the_variants() -> None:
    figures = {"train_size": 8000, "variants": {
        "plain": {"label": "plain keras", "images_per_second": 1000.0},
        "cifarlab-bf16": {"label": "cifarlab mixed_bfloat16", "images_per_second": 1500.0},
    }}  # fmt: skip
    assert train_chart(figures).values == {
        "plain keras": {"images/s": 1000.0}, "cifarlab mixed_bfloat16": {"images/s": 1500.0},
    }  # fmt: skip


def test_no_path_writes_nothing(tmp_path: Path) -> None:
    write(BarChart(title="t", unit="u", values={"g": {"s": 1.0}}), None)
    assert list(tmp_path.iterdir()) == []
