"""Statistics behind every number evalsvc reports: tests, effect sizes, multiplicity, agreement, and the building
blocks of intervals.py (the summary's intervals). Pure numpy/scipy on plain arrays; bootstraps are seeded and
resample items (clusters), never individual samples."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

DEFAULT_BOOT = 2000
MAX_PATTERNS = 512  # distinct (sum, count) item patterns up to which the multinomial shortcut is used
EXACT_MCNEMAR_BELOW = 25  # discordant pairs; below this the chi-square approximation is poor


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p: float
    method: str


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - depends on the environment
        from evalsvc.errors import MissingExtra

        raise MissingExtra("scipy (statistics)", "report") from None
    return stats


def wilson(k: int, n: int, conf: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion k/n; NaN when n is 0."""
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan)
    z = _z(conf)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Estimate(p, lo, hi)


@functools.lru_cache(maxsize=8)
def _z(conf: float) -> float:
    # the standard library's normal quantile keeps scipy out of the summary path (a second of import time)
    return NormalDist().inv_cdf(0.5 + conf / 2)


def cluster_sums(values: np.ndarray, clusters: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster (sum, count) of `values`; each value is its own cluster when `clusters` is None."""
    values = np.asarray(values, dtype=float)
    if clusters is None:
        return values, np.ones_like(values)
    _, inv = np.unique(np.asarray(clusters), return_inverse=True)
    sums = np.bincount(inv, weights=values)
    counts = np.bincount(inv).astype(float)
    return sums, counts


def bootstrap_mean(
    values: np.ndarray,
    clusters: np.ndarray | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
    conf: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean with a percentile bootstrap CI that resamples clusters (items) with replacement.

    For statistics without a closed form only: summary metrics use intervals.py, because a percentile bootstrap of a
    1-5 mean covers 0.77 at n = 5 and returns [1, 1] for five 1s.

    With several samples per item pass the item ids as `clusters`: the statistic is then the ratio
    Σ resampled sums / Σ resampled counts, which is the overall mean of the resampled records.
    """
    sums, counts = cluster_sums(values, clusters)
    if counts.sum() == 0:
        return Estimate(math.nan, math.nan, math.nan)
    value = float(sums.sum() / counts.sum())
    reps = _resampled_ratios(sums, counts, n_boot, seed)
    lo, hi = np.quantile(reps, [(1 - conf) / 2, (1 + conf) / 2])
    return Estimate(value, float(lo), float(hi))


def _resampled_ratios(sums: np.ndarray, counts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    # Resampling n clusters with replacement only matters through how often each distinct (sum, count) pattern
    # is drawn, which is Multinomial(n, pattern frequencies). Scores are small integers, so a cell of 75k items
    # has a handful of patterns and the bootstrap costs O(n_boot × patterns) instead of O(n_boot × n).
    pats, freq = np.unique(np.column_stack([sums, counts]), axis=0, return_counts=True)
    n = len(sums)
    rng = np.random.default_rng(seed)
    many = len(pats) > MAX_PATTERNS
    width = n if many else len(pats)
    out = np.empty(n_boot)
    block = max(1, 4_000_000 // max(width, 1))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        if many:  # mostly distinct values (continuous scores): draw cluster indices directly
            idx = rng.integers(0, n, (size, n))
            num, den = sums[idx].sum(axis=1), counts[idx].sum(axis=1)
        else:
            w = rng.multinomial(n, freq / n, size=size)
            num, den = w @ pats[:, 0], w @ pats[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + size] = num / den
    return out[np.isfinite(out)]


def mcnemar(b: int, c: int, exact_below: int = EXACT_MCNEMAR_BELOW) -> TestResult:
    """McNemar's test on the discordant counts b (only the first is positive) and c (only the second).

    Exact two-sided binomial test when b + c < `exact_below`, otherwise chi-square with continuity correction.
    """
    st = _scipy_stats()
    n = b + c
    if n == 0:
        return TestResult(0.0, 1.0, "mcnemar-exact")
    if n < exact_below:
        p = min(1.0, 2 * float(st.binom.cdf(min(b, c), n, 0.5)))
        return TestResult(float(min(b, c)), p, "mcnemar-exact")
    chi2 = (abs(b - c) - 1) ** 2 / n
    return TestResult(chi2, float(st.chi2.sf(chi2, 1)), "mcnemar-chi2-cc")


def discordant_odds_ratio(b: int, c: int, conf: float = 0.95) -> Estimate:
    """Conditional odds ratio b/c of a paired binary outcome, exact CI via Clopper-Pearson on b/(b+c)."""
    n = b + c
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan)
    beta = _scipy_stats().beta
    alpha = 1 - conf
    p_lo = 0.0 if b == 0 else float(beta.ppf(alpha / 2, b, c + 1))
    p_hi = 1.0 if c == 0 else float(beta.ppf(1 - alpha / 2, b + 1, c))

    def odds(p: float) -> float:
        return math.inf if p >= 1 else p / (1 - p)

    return Estimate(math.inf if c == 0 else b / c, odds(p_lo), odds(p_hi))


def wilcoxon(diffs: np.ndarray) -> TestResult:
    """Wilcoxon signed-rank test of paired differences (zero differences dropped); p=1 when all are zero."""
    d = np.asarray(diffs, dtype=float)
    if not np.any(d != 0):
        return TestResult(0.0, 1.0, "wilcoxon")
    res = _scipy_stats().wilcoxon(d, zero_method="wilcox")
    return TestResult(float(res.statistic), float(res.pvalue), "wilcoxon")


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone); NaN entries stay NaN and are not in the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if m == 0:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


@dataclass(frozen=True)
class Kappa:
    kappa: float
    lo: float
    hi: float
    labels: list
    confusion: np.ndarray  # rows: first rater, columns: second rater
    weights: str | None


def cohen_kappa(
    a,
    b,
    *,
    labels: list | None = None,
    weights: str | None = None,
    conf: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Kappa:
    """Cohen's κ of two raters (weights None, 'linear' or 'quadratic' for ordered labels) with a bootstrap CI."""
    a, b = np.asarray(a), np.asarray(b)
    if labels is None:
        labels = sorted(set(a.tolist()) | set(b.tolist()))
    index = {v: i for i, v in enumerate(labels)}
    ia = np.array([index[v] for v in a.tolist()], dtype=int)
    ib = np.array([index[v] for v in b.tolist()], dtype=int)
    k = len(labels)
    conf_m = np.zeros((k, k), dtype=int)
    np.add.at(conf_m, (ia, ib), 1)
    w = _disagreement_weights(k, weights)
    value = _kappa_from(conf_m, w)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(ia), len(ia))
        m = np.zeros((k, k), dtype=int)
        np.add.at(m, (ia[pick], ib[pick]), 1)
        reps.append(_kappa_from(m, w))
    reps = np.array(reps)
    reps = reps[np.isfinite(reps)]
    lo, hi = np.quantile(reps, [(1 - conf) / 2, (1 + conf) / 2]) if len(reps) else (math.nan, math.nan)
    return Kappa(value, float(lo), float(hi), list(labels), conf_m, weights)


def _disagreement_weights(k: int, weights: str | None) -> np.ndarray:
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    if weights is None:
        return (i != j).astype(float)
    if weights == "linear":
        return np.abs(i - j) / max(k - 1, 1)
    if weights == "quadratic":
        return ((i - j) / max(k - 1, 1)) ** 2
    raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")


def _kappa_from(confusion: np.ndarray, w: np.ndarray) -> float:
    n = confusion.sum()
    if n == 0:
        return math.nan
    observed = confusion / n
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    denom = (w * expected).sum()
    if denom == 0:
        return math.nan  # both raters used one label only: agreement beyond chance is undefined
    return float(1 - (w * observed).sum() / denom)
