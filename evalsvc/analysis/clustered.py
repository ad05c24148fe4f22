"""Paired tests of a binary outcome with the item as the unit: McNemar for one pair per item, the clustered McNemar
(Durkalski et al. 2003) or its exact sign-flip form when items carry several sample pairs.

Samples of one item are not independent (the item decides most of the answer), so counting them as pairs would
reject a true null far too often; here each item contributes one term, its discordance b_i - c_i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalsvc.analysis.stats import (
    EXACT_MCNEMAR_BELOW,
    Estimate,
    TestResult,
    _scipy_stats,
    discordant_odds_ratio,
    mcnemar,
)


@dataclass(frozen=True)
class BinaryPairs:
    """Discordant counts of paired 0/1 outcomes, per item: b (positive only under other), c (only under baseline)."""

    b: np.ndarray
    c: np.ndarray
    pairs: np.ndarray  # complete pairs per item

    @classmethod
    def of(cls, base: np.ndarray, other: np.ndarray, items: np.ndarray) -> BinaryPairs:
        _, inv = np.unique(np.asarray(items), return_inverse=True)
        b = np.bincount(inv, weights=((other == 1) & (base == 0)).astype(float)).astype(int)
        c = np.bincount(inv, weights=((base == 1) & (other == 0)).astype(float)).astype(int)
        return cls(b, c, np.bincount(inv))

    @property
    def repeated(self) -> bool:
        return bool(self.pairs.max(initial=0) > 1)


def paired_binary_test(pairs: BinaryPairs, exact_below: int = EXACT_MCNEMAR_BELOW) -> TestResult:
    """McNemar on the pair counts when each item has one pair; with repeated pairs the clustered McNemar, exact
    (sign-flip over items) when fewer than `exact_below` items are discordant on balance."""
    if not pairs.repeated:
        return mcnemar(int(pairs.b.sum()), int(pairs.c.sum()), exact_below)
    d = pairs.b - pairs.c
    if np.count_nonzero(d) < exact_below:
        return signflip_exact(d)
    return clustered_mcnemar(pairs.b, pairs.c)


def clustered_mcnemar(b: np.ndarray, c: np.ndarray) -> TestResult:
    """Durkalski et al. (2003): X² = (Σ b_i − c_i)² / Σ (b_i − c_i)², chi-square with 1 df under the null."""
    d = np.asarray(b, dtype=float) - np.asarray(c, dtype=float)
    denom = float((d * d).sum())
    if denom == 0:
        return TestResult(0.0, 1.0, "clustered-mcnemar")
    chi2 = float(d.sum()) ** 2 / denom
    return TestResult(chi2, float(_scipy_stats().chi2.sf(chi2, 1)), "clustered-mcnemar")


def signflip_exact(d: np.ndarray) -> TestResult:
    """Exact two-sided test of Σ d_i against its distribution when each item's integer discordance d_i flips sign
    with probability 1/2 (the null: the two conditions are exchangeable within an item). Durkalski's statistic is
    this test's normal approximation; with d_i in {-1, 0, 1} it is the exact McNemar test."""
    mags = np.abs(np.asarray(d, dtype=np.int64))
    mags = mags[mags > 0]
    observed = int(np.asarray(d).sum())
    if len(mags) == 0:
        return TestResult(0.0, 1.0, "clustered-mcnemar-exact")
    total = int(mags.sum())
    dist = np.zeros(2 * total + 1)  # dist[k] = P(Σ ± d_i = k - total)
    dist[total] = 1.0
    for m in mags:
        dist = 0.5 * (np.roll(dist, m) + np.roll(dist, -m))  # no wrap-around: |Σ| never exceeds total
    support = np.arange(-total, total + 1)
    p = float(dist[np.abs(support) >= abs(observed)].sum())
    return TestResult(float(observed), min(1.0, p), "clustered-mcnemar-exact")


def clustered_odds_ratio(pairs: BinaryPairs, conf: float = 0.95) -> Estimate:
    """Discordant-pair odds ratio b/c; with repeated pairs its exact interval uses b and c divided by the clustered
    McNemar's variance inflation Σ(b_i − c_i)² / (b + c) (at least 1), so an item's samples count as one."""
    b, c = int(pairs.b.sum()), int(pairs.c.sum())
    if not pairs.repeated or b + c == 0:
        return discordant_odds_ratio(b, c, conf)
    d = (pairs.b - pairs.c).astype(float)
    inflation = max(1.0, float((d * d).sum()) / (b + c))
    return discordant_odds_ratio(b / inflation, c / inflation, conf)
