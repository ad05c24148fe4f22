"""Paired binary tests with the item as the unit: the issue's known answer (10 items × 10 identical samples), the
exact sign-flip form against McNemar, and the false-positive rate with repeated samples and no true difference."""

from __future__ import annotations

import numpy as np
import pytest

from evalsvc.analysis import stats
from evalsvc.analysis.clustered import (
    BinaryPairs,
    clustered_mcnemar,
    clustered_odds_ratio,
    paired_binary_test,
    signflip_exact,
)


def _identical_samples(pos_other: int, pos_base: int, n_items: int = 10, samples: int = 10) -> BinaryPairs:
    """Items whose samples all agree: the first `pos_other` items positive only under other, the next `pos_base`
    only under baseline, the rest concordant."""
    base = np.array([0] * pos_other + [1] * pos_base + [0] * (n_items - pos_other - pos_base))
    other = np.array([1] * pos_other + [0] * pos_base + [0] * (n_items - pos_other - pos_base))
    items = np.repeat(np.arange(n_items), samples)
    return BinaryPairs.of(np.repeat(base, samples), np.repeat(other, samples), items)


def test_ten_items_of_ten_identical_samples_known_answer():
    pairs = _identical_samples(6, 2)
    assert stats.mcnemar(int(pairs.b.sum()), int(pairs.c.sum())).p == pytest.approx(1.3e-5, rel=0.01)  # records
    durkalski = clustered_mcnemar(pairs.b, pairs.c)
    assert durkalski.statistic == pytest.approx(2.0) and durkalski.p == pytest.approx(0.157, abs=5e-4)
    exact = paired_binary_test(pairs)  # 8 discordant items < 25: the exact form, which is the item-level exact test
    assert exact.method == "clustered-mcnemar-exact" and exact.p == pytest.approx(0.289, abs=5e-4)
    assert exact.p == pytest.approx(stats.mcnemar(6, 2).p)


def test_signflip_with_single_pairs_is_the_exact_mcnemar():
    for b, c in ((1, 6), (0, 4), (7, 7), (3, 9)):
        d = np.array([1] * b + [-1] * c + [0] * 5)
        assert signflip_exact(d).p == pytest.approx(stats.mcnemar(b, c).p)
    assert signflip_exact(np.zeros(4, dtype=int)).p == 1.0


def test_signflip_by_hand_with_unequal_discordance():
    # d = (3, 1, 1): the 8 sign patterns give sums ±5, ±3, ±1, ±1 (each twice over ±); |S| >= 5 in 2 of 8
    assert signflip_exact(np.array([3, 1, 1])).p == pytest.approx(2 / 8)
    assert signflip_exact(np.array([3, -1, 1])).p == pytest.approx(6 / 8)  # observed 3: |S| >= 3 in 6 of 8


def test_one_pair_per_item_keeps_plain_mcnemar():
    pairs = BinaryPairs.of(np.array([1, 0, 0, 1]), np.array([0, 1, 1, 1]), np.arange(4))
    assert not pairs.repeated
    assert paired_binary_test(pairs) == stats.mcnemar(2, 1)


def test_many_discordant_items_use_durkalski():
    pairs = _identical_samples(20, 10, n_items=40, samples=3)
    res = paired_binary_test(pairs)
    assert res.method == "clustered-mcnemar" and res.statistic == pytest.approx((60 - 30) ** 2 / (30 * 9))


def test_odds_ratio_interval_counts_an_items_samples_once():
    clustered = clustered_odds_ratio(_identical_samples(6, 2))
    by_item = stats.discordant_odds_ratio(6, 2)
    assert clustered.value == pytest.approx(3.0)
    assert (clustered.lo, clustered.hi) == pytest.approx((by_item.lo, by_item.hi))  # inflation 800 / 80 = 10


def _null_pairs(rng, n_items: int, samples: int) -> BinaryPairs:
    # each item has a propensity p_i ~ Beta(0.6, 1.4); each condition its own p_ic ~ Beta(2 p_i, 2 (1 - p_i)) around
    # it: a strategy helps on some items and hurts on others, exchangeably, so on average nothing differs
    p = rng.beta(0.6, 1.4, n_items)

    def arm():
        p_c = rng.beta(2 * p + 1e-9, 2 * (1 - p) + 1e-9)
        return (rng.random((n_items, samples)) < p_c[:, None]).astype(int).ravel()

    return BinaryPairs.of(arm(), arm(), np.repeat(np.arange(n_items), samples))


def test_false_positive_rate_with_repeated_samples_and_no_difference():
    rng = np.random.default_rng(15)
    item_level, record_level = [], []
    for _ in range(1500):
        pairs = _null_pairs(rng, 30, 5)
        item_level.append(paired_binary_test(pairs).p < 0.05)
        record_level.append(stats.mcnemar(int(pairs.b.sum()), int(pairs.c.sum())).p < 0.05)
    assert np.mean(item_level) <= 0.07
    assert np.mean(record_level) > 0.12  # counting samples as pairs: the defect this test guards against


def test_false_positive_rate_of_item_mean_wilcoxon():
    rng = np.random.default_rng(16)
    rejections = []
    for _ in range(1500):
        per_item = rng.dirichlet(2.0 * np.array([0.55, 0.1, 0.1, 0.1, 0.15]), size=30)

        def arm(per_item=per_item):  # each condition its own item probabilities around the item's (see _null_pairs)
            cum = np.cumsum([rng.dirichlet(2 * p + 1e-3) for p in per_item], axis=1)
            return ((rng.random((30, 5))[:, :, None] > cum[:, None, :]).sum(-1) + 1).clip(1, 5)

        rejections.append(stats.wilcoxon((arm() - arm()).mean(axis=1)).p < 0.05)
    assert np.mean(rejections) <= 0.07
