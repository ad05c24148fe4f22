"""Intervals of the summary against hand-computed values: modified Wilson, effective sample size of repeated
samples, the bounded Student-t of 1-5 means, and the adjusted Wald interval of paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalsvc.analysis import stats
from evalsvc.analysis.intervals import bounded_mean, paired_difference, proportion_ci, wilson_cc

Z = 1.959963984540054


def test_continuity_corrected_wilson_matches_newcombes_table():
    # Newcombe (1998), Stat Med 17:857, Table II, method 4
    assert wilson_cc(81, 263) == pytest.approx((0.2535, 0.3682), abs=1e-4)
    assert wilson_cc(15, 148) == pytest.approx((0.0598, 0.1644), abs=1e-4)
    assert wilson_cc(0, 20) == pytest.approx((0.0, 0.2005), abs=1e-4)
    assert wilson_cc(1, 29) == pytest.approx((0.0018, 0.1963), abs=1e-4)
    assert wilson_cc(28, 29) == pytest.approx((1 - 0.1963, 1 - 0.0018), abs=1e-4)  # symmetric


def test_continuity_correction_keeps_coverage_where_wilson_dips():
    # exact binomial coverage at p = 0.5, n = 4: plain Wilson misses on 0 and 4 successes ([0, 0.49]), 0.875
    assert wilson_cc(0, 4)[1] > 0.5 > stats.wilson(0, 4).hi
    assert wilson_cc(10, 10) == pytest.approx((1 - wilson_cc(0, 10)[1], 1.0))
    assert all(wilson_cc(x, 10)[0] <= x / 10 <= wilson_cc(x, 10)[1] for x in range(11))


def test_one_sample_per_item_is_modified_wilson_on_the_records():
    est = proportion_ci(np.array([1.0] * 3 + [0.0] * 7))
    assert est.value == pytest.approx(0.3) and (est.lo, est.hi) == pytest.approx(wilson_cc(3, 10))
    assert math.isnan(proportion_ci(np.array([])).value)


def test_a_zero_share_of_repeated_samples_is_wilson_on_the_items():
    # 50 items × 5 samples, none positive: Wilson on the 50 items, not [0, 0] (plain Wilson: [0, 0.0713]; the
    # continuity correction gives (z² + 1 + z·sqrt(z² + 2 - 1/50)) / (2 (50 + z²)) = 0.0889)
    est = proportion_ci(np.zeros(250), np.repeat(np.arange(50), 5))
    assert (est.value, est.lo) == (0.0, 0.0)
    assert est.hi == pytest.approx((Z * Z + 1 + Z * math.sqrt(Z * Z + 2 - 1 / 50)) / (2 * (50 + Z * Z)))
    assert est.hi == pytest.approx(0.0889, abs=1e-4)
    ones = proportion_ci(np.ones(250), np.repeat(np.arange(50), 5))
    assert (ones.lo, ones.hi) == pytest.approx((1 - est.hi, 1.0))


def test_identical_samples_count_each_item_once():
    # 20 items × 4 identical samples, 6 positive items: the design effect is N/(n-1) = 80/19, capped at 4 samples,
    # so the effective size is the 20 items, scaled by (z / t_19)² for the estimated variance
    values = np.repeat([1.0] * 6 + [0.0] * 14, 4)
    est = proportion_ci(values, np.repeat(np.arange(20), 4))
    n_eff = 20 * (Z / 2.093024054) ** 2
    assert est.value == pytest.approx(0.3)
    assert (est.lo, est.hi) == pytest.approx(wilson_cc(0.3 * n_eff, n_eff))
    single = wilson_cc(6, 20)
    assert est.lo < single[0] and est.hi > single[1]  # no narrower than one sample per item


def test_independent_samples_keep_the_record_count():
    # 60 items × 5 samples with no item effect: the design effect is about 1, the interval about Wilson's on 300
    rng = np.random.default_rng(4)
    values = (rng.random(300) < 0.4).astype(float)
    est = proportion_ci(values, np.repeat(np.arange(60), 5))
    plain = wilson_cc(values.sum(), 300)
    assert est.hi - est.lo == pytest.approx(plain[1] - plain[0], rel=0.12)


def test_five_ones_give_a_bounded_t_interval_by_hand():
    # items 1,1,1,1,1 plus half an item at 1 and at 5: weights (1,1,1,1,1,.5,.5), centre 8/6,
    # var = Σ w²(m - centre)² / 36 × 6/5 = 0.13148, half = t(4) × sqrt(var) = 2.7764 × 0.36260
    est = bounded_mean(np.ones(5), lo=1, hi=5)
    assert est.value == 1.0 and est.lo == 1.0
    assert est.hi == pytest.approx(4 / 3 + 2.776445 * math.sqrt(3.94444 / 36 * 1.2), rel=1e-4)
    assert est.hi == pytest.approx(2.34, abs=0.01)
    one = bounded_mean(np.array([3.0]), lo=1, hi=5)
    assert one.lo < 3.0 < one.hi  # one record: a wide interval, never [3, 3]
    assert math.isnan(bounded_mean(np.array([]), lo=1, hi=5).value)


def test_bounded_mean_approaches_the_t_interval_with_many_items():
    rng = np.random.default_rng(1)
    values = rng.choice(np.arange(1.0, 6.0), size=2000, p=[0.3, 0.2, 0.2, 0.2, 0.1])
    est = bounded_mean(values, lo=1, hi=5)
    half = 1.9612 * values.std(ddof=1) / math.sqrt(2000)
    assert est.value == pytest.approx(values.mean())
    assert (est.lo, est.hi) == pytest.approx((values.mean() - half, values.mean() + half), abs=0.004)


def test_identical_samples_of_a_score_add_no_information():
    values = np.array([1.0, 2.0, 1.0, 5.0, 1.0, 3.0, 1.0, 1.0])
    once = bounded_mean(values, lo=1, hi=5)
    thrice = bounded_mean(np.repeat(values, 3), np.repeat(np.arange(8), 3), lo=1, hi=5)
    assert (thrice.value, thrice.lo, thrice.hi) == pytest.approx((once.value, once.lo, once.hi))


def test_bonett_price_interval_by_hand():
    # 30 pairs, b = 5, c = 1: p12 = 6/32, p21 = 2/32, se = sqrt((8/32 - (4/32)²) / 32)
    diffs = np.array([1.0] * 5 + [-1.0] + [0.0] * 24)
    est = paired_difference(diffs)
    se = math.sqrt((8 / 32 - (4 / 32) ** 2) / 32)
    assert est.value == pytest.approx(4 / 30)
    assert (est.lo, est.hi) == pytest.approx((4 / 32 - Z * se, 4 / 32 + Z * se))


def test_no_discordant_pair_gives_a_non_zero_interval():
    est = paired_difference(np.zeros(30))
    assert est.value == 0.0 and est.hi == pytest.approx(Z * math.sqrt(2 / 32 / 32)) and est.lo == -est.hi
    scores = paired_difference(np.zeros(30), span=4.0)  # 1-5 scores: the same in units of the scale's span
    assert scores.hi == pytest.approx(4 * est.hi)
    clustered = paired_difference(np.zeros(150), np.repeat(np.arange(30), 5))
    assert clustered.hi == pytest.approx(est.hi)  # 30 items × 5 agreeing samples: each item counts once


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=40), st.integers(min_value=1, max_value=4))
def test_score_intervals_have_width_and_hold_their_value(scores, k):
    values = np.array(scores, dtype=float)
    items = np.arange(len(values)) // k
    est = bounded_mean(values, items, lo=1, hi=5)
    assert 1 <= est.lo <= est.value <= est.hi <= 5 and est.hi > est.lo
    share = proportion_ci((values >= 4).astype(float), items)
    assert 0 <= share.lo <= share.value <= share.hi <= 1 and share.hi > share.lo
    diff = paired_difference(values - values[::-1], items, span=4.0)
    assert -4 <= diff.lo <= diff.value <= diff.hi <= 4 and diff.hi > diff.lo
