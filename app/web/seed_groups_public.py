"""Seed groups in words and colours: GET /api/compare?group=seed's documented response, and
what the compare page's group view draws.

``app.services.seed_groups`` finds the groups and the test results; this module names each
group by the settings that tell it from the others, gives it its colour (one per group on
every chart) and says each result in a sentence, once, for the page and the API alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.core.models import Status
from app.services.seed_groups import (
    ALPHA,
    FEW_SEEDS,
    Estimate,
    GroupComparison,
    GroupWarning,
    GroupWarningKind,
    SeedGroup,
    SeedGroupComparison,
    Verdict,
)
from app.web.charts import experiment_color
from app.web.formatting import format_p_value, model_title
from app.web.forms import shown_value
from app.web.presentation import McNemarPublic


class EstimatePublic(BaseModel):
    """A figure over a group's seeds: mean ± sample std, the 95 % t-interval of the mean, and
    each seed's value; ``std`` and the interval need at least two seeds."""

    model_config = ConfigDict(from_attributes=True)

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    values: list[float]


class CurveStatPublic(BaseModel):
    """One epoch of a group's mean curve, over the ``n`` seeds that reached it."""

    model_config = ConfigDict(from_attributes=True)

    epoch: int
    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


class MemberPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    seed: int | None
    status: Status
    test_accuracy: float | None


class SeedGroupPublic(BaseModel):
    """Runs of one spec under several seeds; ``id`` is its first member's experiment id."""

    id: int
    label: str = Field(description="The settings that tell this group from the others")
    color: str
    model: str
    hyperparameters: dict[str, Any] = Field(description="The shared spec, without the seed")
    n: int = Field(description="Members, evaluated or not")
    members: list[MemberPublic]
    test_accuracy: EstimatePublic
    macro_f1: EstimatePublic
    per_class_f1: dict[str, EstimatePublic]
    curves: dict[str, list[CurveStatPublic]] = Field(
        description="accuracy, val_accuracy, loss and val_loss: mean per epoch over seeds"
    )


class WelchPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    difference: float
    statistic: float | None
    df: float | None
    p_value: float


class PooledPublic(BaseModel):
    """McNemar's test with the per-image counts summed over the matched ``seeds``."""

    seeds: list[int]
    mcnemar: McNemarPublic


class GroupComparisonPublic(BaseModel):
    """Group ``b`` against the baseline group ``a``: the difference of mean test accuracy
    (b - a) beside each group's per-seed spread, and both tests."""

    a: int
    b: int
    difference: float | None
    spread_a: float | None = Field(description="Per-seed std of the baseline group's accuracy")
    spread_b: float | None = Field(description="Per-seed std of this group's accuracy")
    noise: float | None = Field(
        description="The pooled per-seed std the difference is weighed against"
    )
    welch: WelchPublic | None
    pooled: PooledPublic | None
    verdict: Literal["larger", "within", "unknown"] = Field(
        description="Is the difference larger than the seed-to-seed noise?"
    )
    text: str


class GroupWarningPublic(BaseModel):
    kind: Literal["unequal_seeds", "few_seeds", "unfinished"]
    groups: dict[int, int] = Field(description="Each group concerned and its count")
    text: str


class SeedGroupsPublic(BaseModel):
    """The compare view of seed groups: groups in the order of their first member, each
    against the baseline group, and the fair-comparison warnings."""

    group: Literal["seed"] = "seed"
    baseline_id: int = Field(description="The baseline group's id")
    groups: list[SeedGroupPublic]
    comparisons: list[GroupComparisonPublic]
    warnings: list[GroupWarningPublic]


# --- words --------------------------------------------------------------------------------------


def group_label(group: SeedGroup, differing: list[str]) -> str:
    """The settings that differ between groups, e.g. "learning_rate 0.003" (the model's title
    first where models differ); the first member's name when nothing differs."""
    parts = [model_title(group.model)] if "model" in differing else []
    parts += [
        f"{key} {shown_value(group.hyperparameters.get(key))}"
        for key in differing
        if key != "model"
    ]
    return ", ".join(parts) or group.members[0].name


def format_p(p_value: float) -> str:
    text = format_p_value(p_value)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f} points"


def _pooled_sentence(comparison: GroupComparison, names: Mapping[int, str]) -> str:
    pooled = comparison.pooled
    if pooled is None:
        return (
            "No seed of one group matches a seed of the other on the same test images with "
            "per-image predictions kept, so no pooled per-image test can run."
        )
    table = pooled.result
    seeds = ", ".join(str(seed) for seed in pooled.seeds)
    plural = "s" if len(pooled.seeds) > 1 else ""
    return (
        f"Per image, pooled over {len(pooled.seeds)} matched seed{plural} ({seeds}): only "
        f"{names[comparison.a]} was right on {table.only_a_correct:,} images, only "
        f"{names[comparison.b]} on {table.only_b_correct:,}; McNemar's test: "
        f"{format_p(table.p_value)} (this weighs test-image luck, not seed luck)."
    )


def comparison_text(
    comparison: GroupComparison, groups: Mapping[int, SeedGroup], names: Mapping[int, str]
) -> str:
    """Whether group b's difference from the baseline group a exceeds the seed-to-seed noise,
    then what the pooled per-image test says."""
    a, b = groups[comparison.a], groups[comparison.b]
    name_a, name_b = names[a.id], names[b.id]
    difference = comparison.difference
    if difference is None:
        missing = [names[g.id] for g in (a, b) if g.test_accuracy.n == 0]
        verb = "have" if len(missing) > 1 else "has"
        return f"{' and '.join(missing)} {verb} no evaluated run yet, so no test can run."
    n_a, n_b = a.test_accuracy.n, b.test_accuracy.n
    direction = "higher" if difference > 0 else "lower"
    size = f"{_points(difference)} {direction}" if difference else "the same"
    head = (
        f"{name_b}'s mean test accuracy is {size} than {name_a}'s (n = {n_b} and {n_a} seeds)."
        if difference
        else f"{name_b} and {name_a} have the same mean test accuracy (n = {n_b} and {n_a} seeds)."
    )
    welch, noise = comparison.welch, comparison.noise
    if comparison.verdict is Verdict.unknown or welch is None or noise is None:
        few = " and ".join(names[g.id] for g in (a, b) if g.test_accuracy.n < 2)
        body = (
            f"With a single evaluated seed in {few}, the seed-to-seed noise cannot be "
            "estimated and Welch's test over seeds cannot run: the difference may be "
            "that seed's luck."
        )
    elif comparison.verdict is Verdict.larger:
        body = (
            f"That is larger than the seed-to-seed noise: the per-seed standard deviation "
            f"is {_points(noise)}, and Welch's t-test over the seeds gives "
            f"{format_p(welch.p_value)}."
        )
    else:
        body = (
            f"That is within the seed-to-seed noise: the per-seed standard deviation is "
            f"{_points(noise)}, and Welch's t-test over the seeds gives "
            f"{format_p(welch.p_value)} (it would need both p below {ALPHA:g} and a "
            "difference above the spread); another set of seeds could close or reverse it."
        )
    return " ".join([head, body, _pooled_sentence(comparison, names)])


def warning_text(warning: GroupWarning, names: Mapping[int, str]) -> str:
    listing = ", ".join(f"{names[i]}: {n}" for i, n in warning.counts.items())
    match warning.kind:
        case GroupWarningKind.unequal_seeds:
            return (
                f"The groups have different numbers of evaluated seeds ({listing}): a mean "
                "over fewer seeds is less certain, so compare with care."
            )
        case GroupWarningKind.few_seeds:
            return (
                f"Fewer than {FEW_SEEDS} evaluated seeds ({listing}): the spread, and so the "
                "verdict, is a rough guess. Run more seeds."
            )
        case GroupWarningKind.unfinished:
            return f"Still training ({listing} runs): the figures will change."


# --- the public model ---------------------------------------------------------------------------


def _estimate(figure: Estimate) -> EstimatePublic:
    return EstimatePublic(**{**dataclasses.asdict(figure), "values": list(figure.values)})


def _group(group: SeedGroup, label: str, color: str) -> SeedGroupPublic:
    return SeedGroupPublic(
        id=group.id,
        label=label,
        color=color,
        model=group.model,
        hyperparameters=group.hyperparameters,
        n=group.n,
        members=[MemberPublic.model_validate(m) for m in group.members],
        test_accuracy=_estimate(group.test_accuracy),
        macro_f1=_estimate(group.macro_f1),
        per_class_f1={name: _estimate(f) for name, f in group.per_class_f1.items()},
        curves={
            metric: [CurveStatPublic.model_validate(p) for p in points]
            for metric, points in group.curves.items()
        },
    )


def _comparison(
    comparison: GroupComparison, groups: Mapping[int, SeedGroup], names: Mapping[int, str]
) -> GroupComparisonPublic:
    test, pooled = comparison.welch, comparison.pooled
    return GroupComparisonPublic(
        a=comparison.a,
        b=comparison.b,
        difference=comparison.difference,
        spread_a=groups[comparison.a].test_accuracy.std,
        spread_b=groups[comparison.b].test_accuracy.std,
        noise=comparison.noise,
        welch=None if test is None else WelchPublic.model_validate(test),
        pooled=None
        if pooled is None
        else PooledPublic(
            seeds=list(pooled.seeds), mcnemar=McNemarPublic.model_validate(pooled.result)
        ),
        verdict=comparison.verdict.value,
        text=comparison_text(comparison, groups, names),
    )


def seed_groups_public(comparison: SeedGroupComparison) -> SeedGroupsPublic:
    """The groups with their labels, colours and sentences."""
    names = {g.id: group_label(g, comparison.differing) for g in comparison.groups}
    by_id = {g.id: g for g in comparison.groups}
    return SeedGroupsPublic(
        baseline_id=comparison.baseline_id,
        groups=[_group(g, names[g.id], experiment_color(g.id)) for g in comparison.groups],
        comparisons=[_comparison(c, by_id, names) for c in comparison.comparisons],
        warnings=[
            GroupWarningPublic(kind=w.kind.value, groups=w.counts, text=warning_text(w, names))
            for w in comparison.warnings
        ],
    )
