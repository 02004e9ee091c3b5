"""The compare page's seed-group view: its template context and the figures its script draws.

``app.web.seed_groups_public`` words the groups once; this module formats their figures for
the table cells (mean ± std with n, the difference beside the per-seed spread) and builds the
charts, each in its group's colour, with both bands so the page can switch them in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.services.comparison import MAX_COMPARED
from app.web.charts import (
    exported_as,
    group_accuracy_figure,
    group_curves_figure,
    group_f1_figure,
)
from app.web.seed_groups_public import (
    EstimatePublic,
    GroupComparisonPublic,
    SeedGroupPublic,
    SeedGroupsPublic,
)

VERDICT_TITLES = {
    "larger": "Larger than the seed-to-seed noise",
    "within": "Within the seed-to-seed noise",
    "unknown": "Cannot tell: too few seeds",
}


def mean_std(figure: EstimatePublic, *, percent: bool) -> str:
    """ "70.0 % ± 2.0" (accuracy, the spread in points) or "0.812 ± 0.010"; "—" for none."""
    if figure.mean is None:
        return "—"
    scale, digits, unit = (100, 1, " %") if percent else (1, 3, "")
    text = f"{figure.mean * scale:.{digits}f}{unit}"
    return text if figure.std is None else f"{text} ± {figure.std * scale:.{digits}f}"


def _points(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    text = f"{abs(value) * 100:.1f}"
    if signed and float(text):
        text = ("+" if value > 0 else "−") + text
    return f"{text} points"


@dataclass(frozen=True)
class GroupRow:
    """One group's line in the summary table, its numbers already text."""

    group: SeedGroupPublic
    is_baseline: bool
    accuracy: str
    interval: str
    macro_f1: str
    difference: str
    spread: str


@dataclass(frozen=True)
class VerdictCard:
    """Group ``second`` against the baseline group ``first``, in words and figures."""

    first: SeedGroupPublic
    second: SeedGroupPublic
    comparison: GroupComparisonPublic
    title: str
    difference: str
    spreads: str
    welch: str
    pooled: str


def _interval(figure: EstimatePublic) -> str:
    if figure.ci_low is None or figure.ci_high is None:
        return "—"
    return f"{figure.ci_low * 100:.1f} to {figure.ci_high * 100:.1f} %"


def _p(value: float) -> str:
    return "< 0.0001" if value < 0.0001 else f"{value:.2g}"


def _rows(groups: SeedGroupsPublic) -> list[GroupRow]:
    against = {c.b: c for c in groups.comparisons}
    rows = []
    for group in groups.groups:
        comparison = against.get(group.id)
        rows.append(
            GroupRow(
                group=group,
                is_baseline=group.id == groups.baseline_id,
                accuracy=mean_std(group.test_accuracy, percent=True),
                interval=_interval(group.test_accuracy),
                macro_f1=mean_std(group.macro_f1, percent=False),
                difference=_points(comparison.difference, signed=True) if comparison else "",
                spread=_points(group.test_accuracy.std),
            )
        )
    return rows


def _cards(groups: SeedGroupsPublic) -> list[VerdictCard]:
    by_id = {g.id: g for g in groups.groups}
    cards = []
    for comparison in groups.comparisons:
        pooled = comparison.pooled
        cards.append(
            VerdictCard(
                first=by_id[comparison.a],
                second=by_id[comparison.b],
                comparison=comparison,
                title=VERDICT_TITLES[comparison.verdict],
                difference=_points(comparison.difference, signed=True),
                spreads=f"{_points(comparison.spread_b)} and {_points(comparison.spread_a)}",
                welch="—" if comparison.welch is None else _p(comparison.welch.p_value),
                pooled="—"
                if pooled is None
                else f"{_p(pooled.mcnemar.p_value)} over {len(pooled.seeds)} seeds",
            )
        )
    return cards


@dataclass(frozen=True)
class ClassLine:
    row: str
    cells: list[str]  # per group, in group order: "mean ± std"
    counts: list[int]


def _per_class(groups: Sequence[SeedGroupPublic]) -> list[ClassLine]:
    classes: list[str] = []
    for group in groups:
        classes += [name for name in group.per_class_f1 if name not in classes]
    lines = []
    for name in classes:
        figures = [g.per_class_f1.get(name) for g in groups]
        lines.append(
            ClassLine(
                name,
                [mean_std(f, percent=False) if f else "—" for f in figures],
                [f.n if f else 0 for f in figures],
            )
        )
    lines.append(
        ClassLine(
            "macro avg",
            [mean_std(g.macro_f1, percent=False) for g in groups],
            [g.macro_f1.n for g in groups],
        )
    )
    return lines


def figures(groups: SeedGroupsPublic) -> dict[str, dict[str, Any]]:
    """The view's charts by element id, each saved as ``cifarlab-seed-groups-<ids>-<chart>``."""
    plain = [g.model_dump() for g in groups.groups]
    stem = "cifarlab-seed-groups-" + "-".join(str(g.id) for g in groups.groups)
    return exported_as(
        stem,
        {
            "group-accuracy-chart": group_curves_figure(plain, "val_accuracy"),
            "group-loss-chart": group_curves_figure(plain, "val_loss"),
            "group-seeds-chart": group_accuracy_figure(plain),
            "group-f1-chart": group_f1_figure(plain),
        },
    )


def group_context(groups: SeedGroupsPublic) -> dict[str, Any]:
    """Everything compare_groups.html draws."""
    ids = [member.id for group in groups.groups for member in group.members]
    joined = ",".join(str(i) for i in ids)
    query = urlencode({"ids": joined, "group": "seed", "baseline": groups.baseline_id})
    return {
        "ids": joined,
        "run_count": len(ids),
        "groups": groups.groups,
        "baseline": next(g for g in groups.groups if g.id == groups.baseline_id),
        "warnings": [w.text for w in groups.warnings],
        "rows": _rows(groups),
        "cards": _cards(groups),
        "per_class": _per_class(groups.groups),
        "urls": {
            "json": f"/api/compare?{query}",
            "runs": f"/compare?{urlencode({'ids': joined})}" if len(ids) <= MAX_COMPARED else None,
        },
        "page_data": {"figures": figures(groups), "band": "std"},
    }
