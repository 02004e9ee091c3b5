"""Seed groups: which runs group together, their mean ± std and curves, group against group
(Welch over seeds, McNemar pooled over matched seeds) and GET /api/compare?group=seed, on a
real database with tiny synthetic per-image results."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from scipy import stats
from sqlalchemy.orm import Session

from app.core import crud
from app.core.models import Experiment
from app.services.history_cache import HistoryCache
from app.services.seed_groups import (
    GroupWarningKind,
    SeedGroupComparison,
    Verdict,
    estimate,
    group_experiments,
    load_seed_groups,
)
from app.web.seed_groups_public import seed_groups_public
from tests.support.factories import make_evaluated, make_experiment

LABELS = [i % 10 for i in range(100)]


def wrong_first(count: int) -> list[int]:
    """Predictions wrong on the first ``count`` images: accuracy 1 - count / 100."""
    return [(label + 1) % 10 if i < count else label for i, label in enumerate(LABELS)]


def curve(*val_accuracies: float) -> list[dict[str, float]]:
    return [
        {"val_accuracy": v, "accuracy": v, "loss": 1 - v, "val_loss": 1 - v} for v in val_accuracies
    ]


def group_of(
    session: Session, learning_rate: float, wrong: list[int], **options: object
) -> list[Experiment]:
    """One run per seed 0, 1, 2, ...: seed s wrong on its first ``wrong[s]`` test images."""
    return [
        make_evaluated(
            session,
            wrong_first(count),
            LABELS,
            seed=seed,
            learning_rate=learning_rate,
            epochs=curve(0.5, 1 - count / 100),
            **options,
        )  # fmt: skip
        for seed, count in enumerate(wrong)
    ]


def compared(session: Session, *groups: list[Experiment]) -> SeedGroupComparison:
    ids = [e.id for group in groups for e in group]
    return load_seed_groups(session, HistoryCache(), ids, None)


def test_grouping_ignores_name_and_tags_and_separates_learning_rates(session: Session) -> None:
    slow = [make_experiment(session, seed=seed, learning_rate=0.001) for seed in (0, 1, 2)]
    fast = [make_experiment(session, seed=seed, learning_rate=0.003) for seed in (0, 1)]
    crud.update_experiment(
        session=session, experiment=slow[1], changes={"name": "renamed", "tags": ["other"]}
    )
    session.commit()
    mixed = [slow[0], fast[0], slow[1], fast[1], slow[2]]
    groups = group_experiments(mixed)
    assert [[e.id for e in g] for g in groups] == [[e.id for e in slow], [e.id for e in fast]]


def test_a_clear_difference_over_three_seeds_is_larger_than_the_noise(session: Session) -> None:
    slow = group_of(session, 0.001, [30, 32, 28])  # 70, 68, 72 %
    fast = group_of(session, 0.003, [10, 12, 8])  # 90, 88, 92 %
    result = compared(session, slow, fast)
    a, b = result.groups
    assert (a.id, b.id, result.baseline_id) == (slow[0].id, fast[0].id, slow[0].id)
    assert result.differing == ["learning_rate"]
    assert a.test_accuracy.n == 3
    assert a.test_accuracy.mean == pytest.approx(0.70)
    assert a.test_accuracy.std == pytest.approx(0.02)
    half = stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert (a.test_accuracy.ci_low, a.test_accuracy.ci_high) == pytest.approx(
        (0.70 - half, 0.70 + half)
    )
    assert set(a.per_class_f1) == {f"class{i}" for i in range(10)}
    assert a.per_class_f1["class0"].n == 3
    [comparison] = result.comparisons
    assert comparison.difference == pytest.approx(0.20)
    assert comparison.noise == pytest.approx(0.02)
    expected = stats.ttest_ind([0.90, 0.88, 0.92], [0.70, 0.68, 0.72], equal_var=False)
    assert comparison.welch is not None
    assert comparison.welch.p_value == pytest.approx(expected.pvalue)
    assert comparison.verdict is Verdict.larger
    # seeds 0, 1, 2 match: B is right on 20 images A got wrong, for each seed
    assert comparison.pooled is not None and comparison.pooled.seeds == (0, 1, 2)
    assert (comparison.pooled.result.only_a_correct, comparison.pooled.result.only_b_correct) == (
        0,
        60,
    )
    assert comparison.pooled.result.n == 300
    assert result.warnings == []


def test_identical_groups_are_within_the_noise(session: Session) -> None:
    first = group_of(session, 0.001, [30, 32, 28])
    second = group_of(session, 0.003, [30, 32, 28])
    result = compared(session, first, second)
    [comparison] = result.comparisons
    assert comparison.difference == pytest.approx(0.0)
    assert comparison.welch is not None and comparison.welch.p_value == pytest.approx(1.0)
    assert comparison.verdict is Verdict.within
    assert comparison.pooled is not None
    assert comparison.pooled.result.only_a_correct == comparison.pooled.result.only_b_correct == 0
    [words] = seed_groups_public(result).comparisons
    assert "within the seed-to-seed noise" in words.text


def test_unequal_seed_counts_and_single_seeds_warn_and_leave_the_verdict_open(
    session: Session,
) -> None:
    three = group_of(session, 0.001, [30, 32, 28])
    one = group_of(session, 0.003, [10])
    result = compared(session, three, one)
    kinds = {w.kind: w.counts for w in result.warnings}
    assert kinds[GroupWarningKind.unequal_seeds] == {three[0].id: 3, one[0].id: 1}
    assert kinds[GroupWarningKind.few_seeds] == {one[0].id: 1}
    [comparison] = result.comparisons
    assert comparison.welch is None and comparison.verdict is Verdict.unknown
    [words] = seed_groups_public(result).comparisons
    assert "noise cannot be estimated" in words.text
    assert comparison.pooled is not None and comparison.pooled.seeds == (0,)


def test_mean_curves_count_the_seeds_that_reached_each_epoch(session: Session) -> None:
    runs = [
        make_evaluated(session, LABELS, LABELS, seed=0, epochs=curve(0.5, 0.7, 0.8)),
        make_evaluated(session, LABELS, LABELS, seed=1, epochs=curve(0.6, 0.9)),
        make_evaluated(session, LABELS, LABELS, seed=2, epochs=curve(0.7)),
    ]
    [group] = compared(session, runs).groups
    points = group.curves["val_accuracy"]
    assert [(p.epoch, p.n) for p in points] == [(1, 3), (2, 2), (3, 1)]
    assert points[0].mean == pytest.approx(0.6) and points[0].std == pytest.approx(0.1)
    half = stats.t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert points[0].ci_high == pytest.approx(0.6 + half)
    assert points[1].mean == pytest.approx(0.8)
    assert points[2].std is None and points[2].ci_low is None


@pytest.mark.both_databases
def test_api_compares_seed_groups_beyond_twelve_runs(client: TestClient, session: Session) -> None:
    slow = group_of(session, 0.001, [30, 32, 28, 31, 29, 30, 30])
    fast = group_of(session, 0.003, [10, 12, 8, 11, 9, 10, 10])
    ids = ",".join(str(e.id) for e in [*slow, *fast])
    refused = client.get("/api/compare", params={"ids": ids})  # 14 runs, one by one
    assert refused.status_code == 422
    assert "group=seed compares more" in refused.json()["errors"][0]["message"]
    response = client.get(
        "/api/compare", params={"ids": ids, "group": "seed", "baseline": fast[2].id}
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["baseline_id"] == fast[0].id
    assert [(g["id"], g["n"]) for g in data["groups"]] == [(slow[0].id, 7), (fast[0].id, 7)]
    assert len({g["color"] for g in data["groups"]}) == 2
    assert data["groups"][0]["label"] == "learning_rate 0.001"
    accuracy = data["groups"][1]["test_accuracy"]
    assert accuracy["n"] == 7 and accuracy["mean"] == pytest.approx(0.90)
    assert data["groups"][0]["per_class_f1"]["class3"]["n"] == 7
    [comparison] = data["comparisons"]
    assert (comparison["a"], comparison["b"], comparison["verdict"]) == (
        fast[0].id,
        slow[0].id,
        "larger",
    )
    assert comparison["difference"] == pytest.approx(-0.20)
    assert comparison["spread_a"] > 0 and comparison["spread_b"] > 0
    assert comparison["pooled"]["mcnemar"]["only_a_correct"] == 7 * 20
    assert "larger than the seed-to-seed noise" in comparison["text"]
    assert data["warnings"] == []


def test_api_refuses_an_unknown_group_and_too_many_groups(
    client: TestClient, session: Session
) -> None:
    runs = [make_experiment(session, learning_rate=0.001 * (i + 1)) for i in range(13)]
    ids = ",".join(str(e.id) for e in runs)
    response = client.get(
        "/api/compare", params={"ids": f"{runs[0].id},{runs[1].id}", "group": "runs"}
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["group"]
    response = client.get("/api/compare", params={"ids": ids, "group": "seed"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "ids"
    assert "13 seed groups" in response.json()["errors"][0]["message"]


def test_the_compare_page_switches_to_seed_groups(client: TestClient, session: Session) -> None:
    slow = group_of(session, 0.001, [30, 32, 28])
    fast = group_of(session, 0.003, [10, 12])
    ids = ",".join(str(e.id) for e in [*slow, *fast])
    runs = client.get("/compare", params={"ids": ids})
    assert runs.status_code == 200
    assert f'href="/compare?ids={ids.replace(",", "%2C")}&amp;group=seed' in runs.text
    page = client.get("/compare", params={"ids": ids, "group": "seed"})
    assert page.status_code == 200, page.text
    html = page.text
    assert 'aria-current="page">Seed groups' in html
    assert html.count('<tr data-group="') == 2
    assert "70.0 % ± 2.0" in html and 'data-verdict="larger"' in html
    assert "different numbers of evaluated seeds" in html and "Fewer than 3" in html
    data = json.loads(html.split('id="groups-data">')[1].split("</script>")[0])
    bands = [
        t["meta"]
        for t in data["figures"]["group-accuracy-chart"]["data"]
        if t["meta"]["kind"] == "band"
    ]
    assert {(m["group"], m["band"]) for m in bands} == {
        (g, band) for g in (slow[0].id, fast[0].id) for band in ("std", "ci")
    }
    assert client.get("/compare", params={"ids": ids, "group": "runs"}).status_code == 422


def test_a_scores_interval_stays_between_0_and_1() -> None:
    """Two seeds' t-interval is the mean +- 12.7 standard errors: the page read
    "-214.1 to 294.1 %" for an accuracy."""
    far_apart = estimate([0.1, 0.9])
    assert (far_apart.ci_low, far_apart.ci_high) == (0.0, 1.0)
    near_top = estimate([0.97, 0.99])
    half = stats.t.ppf(0.975, 1) * near_top.std / math.sqrt(2)  # type: ignore[operator]
    assert near_top.ci_low == pytest.approx(0.98 - half) and near_top.ci_high == 1.0
