"""Statistics against hand-computed values, and interval coverage on simulated data with known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsvc.analysis import stats


def test_wilson_matches_the_textbook_interval_for_8_of_10():
    # z = 1.959964: centre = (0.8 + z²/20) / (1 + z²/10), half = z·sqrt(0.016 + z²/400) / (1 + z²/10)
    est = stats.wilson(8, 10)
    assert est.value == 0.8
    assert est.lo == pytest.approx(0.4902, abs=1e-4)
    assert est.hi == pytest.approx(0.9433, abs=1e-4)


def test_wilson_at_zero_successes_and_empty():
    est = stats.wilson(0, 10)
    assert est.lo == 0.0 and est.hi == pytest.approx(0.2775, abs=1e-4)  # z²/(n+z²) = 3.8415/13.8415
    assert stats.wilson(10, 10).hi == 1.0 and stats.wilson(10, 10).lo == pytest.approx(0.7225, abs=1e-4)
    assert math.isnan(stats.wilson(0, 0).value)


def test_mcnemar_chi_square_with_continuity_on_the_classic_example():
    # 2x2 table a=101, b=121, c=59, d=33: (|121-59| - 1)² / 180 = 3721/180
    res = stats.mcnemar(121, 59)
    assert res.method == "mcnemar-chi2-cc"
    assert res.statistic == pytest.approx(3721 / 180)
    assert res.p == pytest.approx(5.45e-6, rel=0.01)  # chi-square(1) tail at 20.672


def test_mcnemar_exact_for_few_discordant_pairs():
    # b=1, c=6: two-sided binomial p = 2·P(X<=1 | 7, 1/2) = 2·(1 + 7)/128
    res = stats.mcnemar(1, 6)
    assert res.method == "mcnemar-exact"
    assert res.p == pytest.approx(16 / 128)
    assert stats.mcnemar(0, 0).p == 1.0
    assert stats.mcnemar(12, 12).p == 1.0
    assert stats.mcnemar(12, 12).method == "mcnemar-exact"  # 24 < 25
    assert stats.mcnemar(13, 12).method == "mcnemar-chi2-cc"


def test_discordant_odds_ratio_and_its_exact_interval():
    est = stats.discordant_odds_ratio(10, 5)
    assert est.value == 2.0
    # Clopper-Pearson for 10/15 is [0.3838, 0.8818]; odds = p / (1 - p)
    assert est.lo == pytest.approx(0.3838 / 0.6162, rel=2e-3)
    assert est.hi == pytest.approx(0.8818 / 0.1182, rel=2e-3)
    assert math.isinf(stats.discordant_odds_ratio(4, 0).value)
    assert stats.discordant_odds_ratio(0, 4).value == 0.0


def test_holm_step_down_by_hand():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> monotone 0.06
    adj = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adj.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    with_nan = stats.holm([0.01, float("nan"), 0.02])
    assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02) and with_nan[2] == pytest.approx(0.02)
    assert stats.holm([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_wilcoxon_signed_rank_small_exact_case():
    # all five differences positive: W- = 0, exact two-sided p = 2 / 2^5
    res = stats.wilcoxon(np.array([1.0, 2, 3, 4, 5]))
    assert res.p == pytest.approx(0.0625)
    assert stats.wilcoxon(np.zeros(10)).p == 1.0


def _raters(confusion):
    a, b = [], []
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            a += [i] * count
            b += [j] * count
    return a, b


def test_cohen_kappa_textbook_example():
    # 50 proposals: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> po = .7, pe = .5, κ = .4
    a, b = _raters([[20, 5], [10, 15]])
    k = stats.cohen_kappa(a, b)
    assert k.kappa == pytest.approx(0.4)
    assert k.confusion.tolist() == [[20, 5], [10, 15]]
    assert k.lo < 0.4 < k.hi


def test_weighted_kappa_by_hand():
    # confusion [[2,1,0],[0,2,1],[0,0,2]], rows (3,3,2)/8, columns (2,3,3)/8
    a, b = _raters([[2, 1, 0], [0, 2, 1], [0, 0, 2]])
    assert stats.cohen_kappa(a, b).kappa == pytest.approx(27 / 43)  # (0.75 - 21/64) / (1 - 21/64)
    assert stats.cohen_kappa(a, b, weights="linear").kappa == pytest.approx(5 / 7)  # 1 - 0.125 / 0.4375
    assert stats.cohen_kappa(a, b, weights="quadratic").kappa == pytest.approx(33 / 41)  # 1 - 0.0625 / 0.3203125
    with pytest.raises(ValueError, match="weights"):
        stats.cohen_kappa(a, b, weights="cubic")


def test_kappa_uses_given_label_order_for_weights():
    k = stats.cohen_kappa(
        ["low", "high", "mid"], ["low", "high", "high"], labels=["low", "mid", "high"], weights="linear"
    )
    assert k.labels == ["low", "mid", "high"]
    assert k.confusion.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]


def test_pattern_bootstrap_matches_naive_resampling():
    rng = np.random.default_rng(3)
    values = rng.choice([1, 2, 3, 4, 5], size=300, p=[0.4, 0.2, 0.2, 0.1, 0.1]).astype(float)
    fast = stats.bootstrap_mean(values, n_boot=4000, seed=1)
    naive = np.array([values[rng.integers(0, 300, 300)].mean() for _ in range(4000)])
    lo, hi = np.quantile(naive, [0.025, 0.975])
    assert fast.value == pytest.approx(values.mean())
    assert fast.lo == pytest.approx(lo, abs=0.03) and fast.hi == pytest.approx(hi, abs=0.03)


def test_bootstrap_is_seeded_and_handles_continuous_values():
    values = np.random.default_rng(0).normal(size=2000)  # all distinct: the index-resampling path
    one, two = stats.bootstrap_mean(values, seed=5), stats.bootstrap_mean(values, seed=5)
    assert one == two
    assert one.lo < values.mean() < one.hi
    assert one.hi - one.lo == pytest.approx(2 * 1.96 / math.sqrt(2000), rel=0.15)
    assert math.isnan(stats.bootstrap_mean(np.array([])).value)


def _coverage(trials: int, make, truth: float) -> float:
    hits = 0
    for t in range(trials):
        est = make(np.random.default_rng(1000 + t), t)
        hits += est.lo <= truth <= est.hi
    return hits / trials


def test_bootstrap_ci_of_a_1_to_5_mean_covers_the_truth_about_95_percent():
    p = np.array([0.35, 0.25, 0.2, 0.12, 0.08])
    truth = float((np.arange(1, 6) * p).sum())

    def make(rng, t):
        return stats.bootstrap_mean(rng.choice(np.arange(1, 6), size=80, p=p).astype(float), n_boot=1000, seed=t)

    assert 0.91 <= _coverage(400, make, truth) <= 0.98


def test_wilson_covers_the_truth_about_95_percent():
    def make(rng, t):
        return stats.wilson(int((rng.random(60) < 0.15).sum()), 60)

    assert 0.92 <= _coverage(1000, make, 0.15) <= 0.985


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=1, max_size=30))
def test_holm_properties(pvalues):
    adj = stats.holm(pvalues)
    p = np.array(pvalues)
    assert np.all(adj >= p - 1e-12) and np.all(adj <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-12)  # monotone in the order of the raw p-values
    assert adj.min() == pytest.approx(min(1.0, len(p) * p.min()))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(min_value=1, max_value=500), st.data())
def test_wilson_contains_the_estimate(n, data):
    k = data.draw(st.integers(min_value=0, max_value=n))
    est = stats.wilson(k, n)
    assert 0.0 <= est.lo <= est.value <= est.hi <= 1.0


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=2, max_size=60), st.integers(min_value=1, max_value=4))
def test_bootstrap_interval_lies_within_the_data(scores, k):
    values = np.array(scores, dtype=float)
    items = np.arange(len(values)) // k
    est = stats.bootstrap_mean(values, items, n_boot=300, seed=0)
    assert values.min() <= est.lo <= est.value <= est.hi <= values.max()
