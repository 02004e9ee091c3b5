"""Seed groups: runs whose specs differ only in ``hyperparameters.seed``, compared as groups.

One run's accuracy mixes the setting with the luck of its seed. Runs of one spec under
several seeds form a group (whether a sweep launched them or a person did, one by one); a
group's mean says what the setting does, its per-seed standard deviation how much a seed
alone moves it. Group against group, two tests answer "is the difference real?":

- Welch's t-test over the per-seed test accuracies: does the gap exceed the seed-to-seed noise?
- McNemar's test on per-image outcomes, pooled over matched seeds (seed s of A against seed s
  of B, both scored on the same test images): is the gap more than test-set sampling?

The first is the one that speaks to "another seed would change the ranking", so it decides
the verdict; the second is reported beside it. Facts only: ``app.web.seed_groups_public``
words them and gives each group its colour.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.core.models import Experiment, Status
from app.core.schemas import FieldError, SpecError
from app.services.comparison import (
    ACTIVE,
    MAX_COMPARED,
    History,
    load_for_comparison,
    load_histories,
)
from app.services.significance import McNemarResult, mcnemar

if TYPE_CHECKING:
    from app.services.history_cache import HistoryCache

MAX_GROUPS = MAX_COMPARED  # as many groups as the runs view takes runs: one colour each
MAX_GROUPED_IDS = 200  # e.g. 12 settings x 16 seeds
CONFIDENCE = 0.95
ALPHA = 0.05
FEW_SEEDS = 3  # below this many seeds a group's spread is a guess
CURVE_METRICS = ("accuracy", "val_accuracy", "loss", "val_loss")


@lru_cache(maxsize=256)
def _t_quantile(probability: float, df: int) -> float:
    """Student's t quantile, kept: a group's curves ask for the same few (one per seed count)
    at every epoch, and each scipy call costs a quarter of a millisecond. scipy is imported
    here, not at the top: the web process imports this module at start and needs scipy.stats
    only when a page shows seed groups."""
    from scipy.stats import t

    return float(t.ppf(probability, df))


def _t_two_sided_p(statistic: float, df: float) -> float:
    from scipy.stats import t

    return float(2 * t.sf(abs(statistic), df))


# --- what a group is ----------------------------------------------------------------------------


def group_key(experiment: Experiment) -> str:
    """The spec without its seed, name and tags, as canonical JSON: equal keys, same setting.
    An imported report has no spec to share, so it is a group of its own."""
    if experiment.status is Status.imported:
        return f"imported:{experiment.id}"
    spec = experiment.spec
    settings = {k: v for k, v in spec.get("hyperparameters", {}).items() if k != "seed"}
    key = {"model": experiment.model, "dataset": spec.get("dataset"), "settings": settings}
    return json.dumps(key, sort_keys=True, default=str)


def seed_of(experiment: Experiment) -> int | None:
    seed = experiment.spec.get("hyperparameters", {}).get("seed")
    return seed if isinstance(seed, int) else None


def group_experiments(experiments: Sequence[Experiment]) -> list[list[Experiment]]:
    """Experiments grouped by ``group_key``, groups in the order of their first member."""
    groups: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        groups.setdefault(group_key(experiment), []).append(experiment)
    return list(groups.values())


# --- statistics over seeds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A score over a group's seeds (test accuracy, an F1: a fraction): mean, sample standard
    deviation (the seed-to-seed spread) and the t-interval of the mean, cut to 0..1, where
    the score lies; ``std`` and the interval need two values."""

    n: int
    mean: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    values: tuple[float, ...]


def estimate(values: Sequence[float]) -> Estimate:
    values = tuple(values)
    if not values:
        return Estimate(0, None, None, None, None, values)
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return Estimate(1, mean, None, None, None, values)
    # statistics.stdev is exact (fractions) and took most of a 2 x 10-seed page's time
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = _t_quantile((1 + CONFIDENCE) / 2, len(values) - 1) * std / math.sqrt(len(values))
    # Two seeds' interval is the mean +- 12.7 standard errors: uncut, it read "-214.1 to 294.1 %".
    return Estimate(len(values), mean, std, max(mean - half, 0.0), min(mean + half, 1.0), values)


@dataclass(frozen=True)
class CurveStat:
    """One epoch of a group's mean curve, over the ``n`` seeds that reached it."""

    epoch: int
    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


def mean_curve(histories: Sequence[History], metric: str) -> list[CurveStat]:
    """Per epoch, the mean over the seeds that reached it and recorded ``metric``: a run
    stopped early leaves the later epochs to the others, and ``n`` says how many remain.
    Summed per epoch with numpy: 2 groups x 10 seeds x 4 curves of 50 epochs took 9 ms as
    one ``estimate`` per epoch."""
    points = [point for history in histories for point in history.curve]
    epochs = np.fromiter((point["epoch"] for point in points), dtype=np.int64, count=len(points))
    values = np.array([point.get(metric) for point in points], dtype=np.float64)  # None: NaN
    kept = np.isfinite(values)
    if not kept.any():
        return []
    order = np.argsort(epochs[kept], kind="stable")
    sorted_epochs, sorted_values = epochs[kept][order], values[kept][order]
    unique, starts, counts = np.unique(sorted_epochs, return_index=True, return_counts=True)
    means = np.add.reduceat(sorted_values, starts) / counts
    squares = np.add.reduceat((sorted_values - np.repeat(means, counts)) ** 2, starts)
    curve = []
    for epoch, n, mean, square in zip(
        unique.tolist(), counts.tolist(), means.tolist(), squares.tolist(), strict=True
    ):
        if n < 2:
            curve.append(CurveStat(epoch, n, mean, None, None, None))
            continue
        std = math.sqrt(square / (n - 1))
        half = _t_quantile((1 + CONFIDENCE) / 2, n - 1) * std / math.sqrt(n)
        curve.append(CurveStat(epoch, n, mean, std, mean - half, mean + half))
    return curve


# --- one group ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    seed: int | None
    status: Status
    test_accuracy: float | None


@dataclass(frozen=True)
class SeedGroup:
    """Runs of one setting under several seeds. ``id`` is its first member's id in the
    order given; ``hyperparameters`` leave out the seed."""

    id: int
    model: str
    hyperparameters: dict[str, Any]
    members: list[Member]
    test_accuracy: Estimate
    macro_f1: Estimate
    per_class_f1: dict[str, Estimate]
    curves: dict[str, list[CurveStat]]

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def seeds(self) -> list[int | None]:
        return [m.seed for m in self.members]


def _per_class_f1(experiments: Sequence[Experiment]) -> dict[str, Estimate]:
    classes: list[str] = []
    values: dict[str, list[float]] = {}
    for experiment in experiments:
        if experiment.evaluation is None:
            continue
        report = experiment.evaluation.report
        for name in experiment.evaluation.classes:
            entry = report.get(name)
            if isinstance(entry, dict) and isinstance(entry.get("f1-score"), int | float):
                classes += [] if name in classes else [name]
                values.setdefault(name, []).append(float(entry["f1-score"]))
    return {name: estimate(values[name]) for name in classes}


def seed_group(experiments: Sequence[Experiment], histories: Mapping[int, History]) -> SeedGroup:
    """One group's figures; ``experiments`` share a ``group_key``."""
    first = experiments[0]
    runs = [histories[e.id] for e in experiments]
    return SeedGroup(
        id=first.id,
        model=first.model,
        hyperparameters={
            k: v for k, v in first.spec.get("hyperparameters", {}).items() if k != "seed"
        },
        members=[Member(e.id, e.name, seed_of(e), e.status, e.test_accuracy) for e in experiments],
        test_accuracy=estimate(
            [e.test_accuracy for e in experiments if e.test_accuracy is not None]
        ),
        macro_f1=estimate([e.macro_f1 for e in experiments if e.macro_f1 is not None]),
        per_class_f1=_per_class_f1(experiments),
        curves={metric: mean_curve(runs, metric) for metric in CURVE_METRICS},
    )


# --- group against group ------------------------------------------------------------------------


@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test on per-seed test accuracies, B - A. With no spread in either group the
    statistic and degrees of freedom are undefined (``None``) and ``p_value`` is 1 for equal
    means, 0 otherwise."""

    difference: float
    statistic: float | None
    df: float | None
    p_value: float


def welch(a: Estimate, b: Estimate) -> WelchResult | None:
    """``None`` when either group has fewer than two seeds: no variance, no test."""
    if a.std is None or b.std is None or a.mean is None or b.mean is None:
        return None
    difference = b.mean - a.mean
    share_a, share_b = a.std**2 / a.n, b.std**2 / b.n
    variance = share_a + share_b
    if variance == 0:
        return WelchResult(difference, None, None, 1.0 if difference == 0 else 0.0)
    statistic = difference / math.sqrt(variance)
    df = variance**2 / (share_a**2 / (a.n - 1) + share_b**2 / (b.n - 1))
    return WelchResult(difference, statistic, df, _t_two_sided_p(statistic, df))


def pooled_std(a: Estimate, b: Estimate) -> float | None:
    """The seed-to-seed standard deviation both groups share, weighted by degrees of freedom."""
    if a.std is None or b.std is None:
        return None
    return math.sqrt(((a.n - 1) * a.std**2 + (b.n - 1) * b.std**2) / (a.n + b.n - 2))


@dataclass(frozen=True)
class PooledPairs:
    """McNemar's test over the images of every matched seed at once: the b and c counts (only
    A right, only B right) summed over ``seeds``."""

    seeds: tuple[int, ...]
    result: McNemarResult


def _outcomes(experiment: Experiment, labels: npt.NDArray[Any]) -> npt.NDArray[np.bool_] | None:
    evaluation = experiment.evaluation
    if evaluation is None or evaluation.predictions is None:
        return None
    predictions = np.asarray(evaluation.predictions)
    return predictions == labels if predictions.shape == labels.shape else None


def pooled_pairs(
    a: Sequence[Experiment], b: Sequence[Experiment], labels: dict[str, npt.NDArray[Any]]
) -> PooledPairs | None:
    """Seed s of A against seed s of B where both kept per-image predictions on the same test
    images (equal fingerprints); ``labels`` by fingerprint, filled as read. ``None`` when no
    seed matches. Concatenating the matched seeds' outcomes sums their tables exactly."""
    by_seed_b: dict[int | None, Experiment] = {}
    for experiment in b:
        by_seed_b.setdefault(seed_of(experiment), experiment)
    seeds: list[int] = []
    outcomes_a: list[npt.NDArray[np.bool_]] = []
    outcomes_b: list[npt.NDArray[np.bool_]] = []
    for first in a:
        seed = seed_of(first)
        second = by_seed_b.get(seed)
        if seed is None or seed in seeds or second is None:
            continue
        if first.evaluation is None or second.evaluation is None:
            continue
        fingerprint = first.evaluation.test_set_fingerprint
        if fingerprint is None or second.evaluation.test_set_fingerprint != fingerprint:
            continue
        if fingerprint not in labels:
            if first.evaluation.labels is None:
                continue
            labels[fingerprint] = np.asarray(first.evaluation.labels)
        right_a = _outcomes(first, labels[fingerprint])
        right_b = _outcomes(second, labels[fingerprint])
        if right_a is None or right_b is None:
            continue
        seeds.append(seed)
        outcomes_a.append(right_a)
        outcomes_b.append(right_b)
    if not seeds:
        return None
    return PooledPairs(
        tuple(seeds), mcnemar(np.concatenate(outcomes_a), np.concatenate(outcomes_b))
    )


class Verdict(enum.StrEnum):
    """Is the difference between the group means larger than the seed-to-seed noise?"""

    larger = "larger"  # Welch p < ALPHA and |difference| > the pooled per-seed std
    within = "within"  # not both: another draw of seeds could close or reverse the gap
    unknown = "unknown"  # a group has fewer than two evaluated seeds: no noise to compare


@dataclass(frozen=True)
class GroupComparison:
    """Group ``b`` against the baseline group ``a`` (group ids): the difference of mean test
    accuracy b - a, the pooled per-seed std it is weighed against, and both tests."""

    a: int
    b: int
    difference: float | None
    noise: float | None
    welch: WelchResult | None
    pooled: PooledPairs | None
    verdict: Verdict


def compare_groups(
    a: SeedGroup,
    b: SeedGroup,
    runs_a: Sequence[Experiment],
    runs_b: Sequence[Experiment],
    labels: dict[str, npt.NDArray[Any]],
) -> GroupComparison:
    acc_a, acc_b = a.test_accuracy, b.test_accuracy
    difference = None if acc_a.mean is None or acc_b.mean is None else acc_b.mean - acc_a.mean
    noise = pooled_std(acc_a, acc_b)
    test = welch(acc_a, acc_b)
    if test is None or difference is None or noise is None:
        verdict = Verdict.unknown
    elif test.p_value < ALPHA and abs(difference) > noise:
        verdict = Verdict.larger
    else:
        verdict = Verdict.within
    return GroupComparison(
        a.id, b.id, difference, noise, test, pooled_pairs(runs_a, runs_b, labels), verdict
    )


# --- the whole comparison -----------------------------------------------------------------------


class GroupWarningKind(enum.StrEnum):
    """What makes a group comparison unfair, in the order the page warns of it."""

    unequal_seeds = "unequal_seeds"  # groups with different numbers of evaluated seeds
    few_seeds = "few_seeds"  # groups with fewer than FEW_SEEDS evaluated seeds
    unfinished = "unfinished"  # members still queued or running: the figures will change


@dataclass(frozen=True)
class GroupWarning:
    """``counts``: each group concerned (by id) and its number of evaluated seeds (of
    unfinished members, for ``unfinished``)."""

    kind: GroupWarningKind
    counts: dict[int, int]


def group_warnings(groups: Sequence[SeedGroup]) -> list[GroupWarning]:
    found = []
    counts = {g.id: g.test_accuracy.n for g in groups}
    if len(set(counts.values())) > 1:
        found.append(GroupWarning(GroupWarningKind.unequal_seeds, counts))
    few = {i: n for i, n in counts.items() if n < FEW_SEEDS}
    if few:
        found.append(GroupWarning(GroupWarningKind.few_seeds, few))
    active = {g.id: sum(m.status in ACTIVE for m in g.members) for g in groups}
    if any(active.values()):
        found.append(
            GroupWarning(GroupWarningKind.unfinished, {i: n for i, n in active.items() if n})
        )
    return found


@dataclass(frozen=True)
class SeedGroupComparison:
    """Groups in the order of their first member; each non-baseline group against the
    baseline group; ``differing``: the settings (``model`` included) whose values differ
    between groups, which is what tells them apart."""

    baseline_id: int
    groups: list[SeedGroup]
    differing: list[str]
    comparisons: list[GroupComparison]
    warnings: list[GroupWarning]


def _differing(groups: Sequence[SeedGroup]) -> list[str]:
    flat = [{"model": g.model, **g.hyperparameters} for g in groups]
    keys = sorted({key for values in flat for key in values})
    return [k for k in keys if len({repr(values.get(k)) for values in flat}) > 1]


def build_seed_groups(
    experiments: Sequence[Experiment],
    histories: Mapping[int, History],
    baseline: int | None = None,
) -> SeedGroupComparison:
    """``baseline``: an experiment id; its group is the baseline (else the first group).
    Raises ``SpecError`` naming ``ids`` when the runs form more than MAX_GROUPS groups."""
    runs = group_experiments(experiments)
    if len(runs) > MAX_GROUPS:
        message = f"these experiments form {len(runs)} seed groups; compare at most {MAX_GROUPS}"
        raise SpecError([FieldError(field="ids", message=message)])
    groups = [seed_group(members, histories) for members in runs]
    base = next((i for i, members in enumerate(runs) if any(e.id == baseline for e in members)), 0)
    labels: dict[str, npt.NDArray[Any]] = {}
    return SeedGroupComparison(
        baseline_id=groups[base].id,
        groups=groups,
        differing=_differing(groups),
        comparisons=[
            compare_groups(groups[base], group, runs[base], runs[i], labels)
            for i, group in enumerate(groups)
            if i != base
        ],
        warnings=group_warnings(groups),
    )


def load_seed_groups(
    session: Session, histories: HistoryCache, ids: list[int], baseline: int | None
) -> SeedGroupComparison:
    """``ids`` from ``parse_ids`` with ``limit=MAX_GROUPED_IDS``: runs forming up to
    MAX_GROUPS groups. Raises ``SpecError`` (422, too many groups) or ``NotFound`` (404)."""
    experiments = load_for_comparison(session, ids)
    return build_seed_groups(experiments, load_histories(session, histories, experiments), baseline)
