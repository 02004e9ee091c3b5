"""McNemar and the paired bootstrap against scipy and hand-computed cases; describe()'s words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats

from app.services.comparison import Untested
from app.services.significance import (
    BootstrapResult,
    McNemarResult,
    _binomial_lower_tail,
    bootstrap_from_table,
    mcnemar,
)
from app.web.presentation import describe, untested_text


def bootstrap(correct_a: Any, correct_b: Any, **settings: Any) -> BootstrapResult:
    """The interval as compare computes it: from the table McNemar's test counts."""
    return bootstrap_from_table(mcnemar(correct_a, correct_b), **settings)


def _pairs(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Outcome lists with exactly these cell counts, shuffled so order cannot matter."""
    a = [True] * both + [True] * only_a + [False] * only_b + [False] * neither
    b = [True] * both + [False] * only_a + [True] * only_b + [False] * neither
    order = np.random.default_rng(7).permutation(len(a))
    return [a[i] for i in order], [b[i] for i in order]


def _correlated(n: int, accuracy_a: float, accuracy_b: float, seed: int) -> tuple[np.ndarray, ...]:
    """Two models that mostly agree, as real models on the same images do."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random(n)
    return difficulty < accuracy_a, difficulty + rng.normal(0, 0.05, n) < accuracy_b


def test_hand_computed_exact_case() -> None:
    # b=1, c=6: P(X <= 1) for Binomial(7, 1/2) = (1 + 7) / 128; two-sided p = 16/128.
    result = mcnemar(*_pairs(both=10, only_a=1, only_b=6, neither=3))
    assert result == McNemarResult(20, 10, 1, 6, 3, 1.0, 0.125, "exact")


@pytest.mark.parametrize(("b", "c"), [(0, 1), (3, 3), (2, 9), (0, 24), (12, 12), (5, 19)])
def test_exact_p_matches_scipy_binomtest(b: int, c: int) -> None:
    result = mcnemar(*_pairs(both=40, only_a=b, only_b=c, neither=7))
    assert result.method == "exact"
    expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("b", "c"), [(10, 15), (40, 60), (100, 100), (1307, 1547), (3, 400)])
def test_chi2_p_matches_scipy(b: int, c: int) -> None:
    result = mcnemar(*_pairs(both=500, only_a=b, only_b=c, neither=50))
    statistic = max(0, abs(b - c) - 1) ** 2 / (b + c)
    assert result.method == "chi2"
    assert result.statistic == pytest.approx(statistic)
    assert result.p_value == pytest.approx(stats.chi2.sf(statistic, 1), rel=1e-9)


def test_chi2_agrees_with_exact_binomial_for_large_counts() -> None:
    result = mcnemar(*_pairs(both=8000, only_a=400, only_b=470, neither=1130))
    exact = stats.binomtest(400, 870, 0.5).pvalue
    assert result.p_value == pytest.approx(exact, rel=0.05)


def test_no_disagreement_means_p_one() -> None:
    same = [True, False, True, True]
    result = mcnemar(same, same)
    assert (result.p_value, result.statistic, result.method) == (1.0, 0.0, "exact")


def test_exact_tail_has_no_overflow_for_ten_thousand_images() -> None:
    assert _binomial_lower_tail(4900, 10_000) == pytest.approx(
        stats.binom.cdf(4900, 10_000, 0.5), rel=1e-9
    )


def test_numpy_and_zero_one_inputs_are_accepted() -> None:
    a, b = _correlated(500, 0.8, 0.85, seed=1)
    from_lists = mcnemar(a.tolist(), b.tolist())
    assert mcnemar(a, b) == from_lists == mcnemar(a.astype(int), b.astype(float))


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        ([True, False], [True], "same test images"),
        ([], [], "non-empty"),
        ([True, 0.5], [True, True], "True/False"),
        (["yes"], [True], "True/False"),
        ([[True]], [[True]], "flat"),
    ],
)
def test_bad_outcomes_raise(a: Any, b: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mcnemar(a, b)
    with pytest.raises(ValueError, match=message):
        bootstrap(a, b)


def test_bootstrap_difference_is_the_plain_accuracy_difference() -> None:
    a, b = _correlated(1000, 0.7, 0.75, seed=2)
    result = bootstrap(a, b)
    assert result.difference == pytest.approx(b.mean() - a.mean(), abs=1e-12)
    assert result.low <= result.difference <= result.high
    assert (result.confidence, result.resamples) == (0.95, 2000)


def test_bootstrap_interval_covers_the_true_difference() -> None:
    covered = 0
    for seed in range(40):
        a, b = _correlated(2000, 0.80, 0.83, seed=seed)
        result = bootstrap(a, b, resamples=1000, seed=seed)
        covered += result.low <= 0.03 <= result.high
    assert covered >= 34  # 95% nominal; 34/40 leaves room for chance


def test_bootstrap_matches_index_resampling() -> None:
    """The multinomial shortcut draws the same distribution as resampling image indices."""
    a, b = _correlated(3000, 0.8, 0.82, seed=3)
    rng = np.random.default_rng(11)
    indices = rng.integers(0, a.size, size=(4000, a.size))
    naive = b[indices].mean(axis=1) - a[indices].mean(axis=1)
    result = bootstrap(a, b, resamples=4000, seed=5)
    low, high = np.quantile(naive, [0.025, 0.975])
    assert result.low == pytest.approx(low, abs=0.002)
    assert result.high == pytest.approx(high, abs=0.002)


def test_bootstrap_is_narrow_for_large_n() -> None:
    a, b = _correlated(10_000, 0.82, 0.84, seed=4)
    result = bootstrap(a, b, resamples=2000)
    assert result.high - result.low < 0.02
    small = bootstrap(a[:200], b[:200])
    assert small.high - small.low > result.high - result.low


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    a, b = _correlated(800, 0.6, 0.65, seed=5)
    first = bootstrap(a, b, seed=3)
    assert bootstrap(a, b, seed=3) == first
    assert bootstrap(a, b, seed=4) != first


def test_bootstrap_confidence_widens_the_interval() -> None:
    a, b = _correlated(800, 0.6, 0.65, seed=6)
    narrow = bootstrap(a, b, confidence=0.5)
    wide = bootstrap(a, b, confidence=0.99)
    assert wide.low < narrow.low <= narrow.high < wide.high


@pytest.mark.parametrize(
    ("options", "message"),
    [({"resamples": 0}, "resamples"), ({"confidence": 1.0}, "confidence")],
)
def test_bootstrap_bad_options(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bootstrap([True], [False], **options)  # type: ignore[arg-type]


def _table(only_a: int, only_b: int, n: int = 10_000, p: float = 0.0003) -> McNemarResult:
    both = n - only_a - only_b - 100
    return McNemarResult(n, both, only_a, only_b, 100, 0.0, p, "chi2")


def test_describe_significant_difference() -> None:
    text = describe(
        "cnn", "effnet", _table(200, 410), BootstrapResult(0.021, 0.014, 0.028, 0.95, 2000)
    )
    assert text == (
        "effnet is 2.1 points more accurate than cnn on the same 10,000 test images "
        "(95% CI 1.4 to 2.8 points). McNemar's test: p = 0.0003; the difference is very "
        "unlikely to be chance."
    )


def test_describe_non_significant_difference_names_the_leader() -> None:
    bootstrap = BootstrapResult(-0.004, -0.011, 0.003, 0.95, 2000)
    text = describe("cnn", "effnet", _table(300, 260, p=0.41), bootstrap)
    assert text.startswith("cnn is 0.4 points more accurate than effnet")
    assert "(95% CI -0.3 to 1.1 points, which includes no difference)" in text
    assert text.endswith("McNemar's test: p = 0.41; this difference could well be chance.")


def test_describe_flags_a_borderline_disagreement() -> None:
    bootstrap = BootstrapResult(0.004, -0.0002, 0.008, 0.95, 2000)
    text = describe("a", "b", _table(100, 140, p=0.047), bootstrap)
    assert "p = 0.047; the difference is unlikely to be chance" in text
    assert "borderline" in text


def test_describe_from_real_outcomes_and_equal_accuracy() -> None:
    a = [True, False] * 50
    b = [False, True] * 50
    text = describe("a", "b", mcnemar(a, b), bootstrap(a, b))
    assert text.startswith("a and b are equally accurate on the same 100 test images")
    assert "p = 1;" in text


def test_describe_rejects_results_from_different_data() -> None:
    with pytest.raises(ValueError, match="different data"):
        describe("a", "b", _table(200, 410), BootstrapResult(0.05, 0.01, 0.09, 0.95, 2000))
    with pytest.raises(ValueError, match="alpha"):
        describe("a", "b", _table(200, 410), BootstrapResult(0.021, 0.01, 0.03, 0.95, 10), 0)


def test_runs_without_a_paired_test_are_named_in_one_line_grouped_by_reason() -> None:
    names = {2: "seed: b2", 3: "seed: b4", 4: "live run", 5: "other set"}
    untested = {4: Untested.unevaluated, 2: Untested.imported, 5: Untested.other_images,
                3: Untested.imported}  # fmt: skip
    assert untested_text(untested, names) == (
        "No paired test for live run: no evaluation yet; seed: b2, seed: b4: imported reports "
        "carry no per-image predictions; other set: not scored on the same test images as the "
        "baseline."
    )
    assert untested_text({}, names) == ""
