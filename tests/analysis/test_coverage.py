"""Coverage of the summary's 95% intervals with known truth, at 5 to 100 items: exact for one-sample shares (every
binomial outcome enumerated), simulated (seeded) for 1-5 means and for shares of repeated samples.

`python -m evalsvc.analysis.coverage` prints the same check for every metric through `metrics.compute`.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from evalsvc.analysis import stats
from evalsvc.analysis.coverage import NS, SCENARIOS, truths
from evalsvc.analysis.guardrails import GUARD_METRICS
from evalsvc.analysis.intervals import bounded_mean, proportion_ci
from evalsvc.analysis.metrics import METRICS

SCORE_DISTRIBUTIONS = {
    "harm, safe model": (0.80, 0.08, 0.05, 0.04, 0.03),
    "harm, very safe": (0.92, 0.03, 0.02, 0.02, 0.01),
    "mid-scale": (0.1, 0.2, 0.4, 0.2, 0.1),
    "helpfulness, skewed to 5": (0.03, 0.05, 0.12, 0.3, 0.5),
}
SHARES = (0.03, 0.05, 0.1, 0.2, 0.5, 0.8, 0.97)
TRIALS = 1500  # Monte Carlo standard error 0.006 at 0.95


def _binom_pmf(n: int, p: float) -> np.ndarray:
    from scipy.stats import binom

    return binom.pmf(np.arange(n + 1), n, p)


def _exact_share_coverage(interval, n: int, p: float) -> float:
    pmf = _binom_pmf(n, p)
    return float(sum(pmf[x] for x in range(n + 1) if interval(x, n)[0] <= p <= interval(x, n)[1]))


def _one_sample(x: int, n: int) -> tuple[float, float]:
    est = proportion_ci(np.array([1.0] * x + [0.0] * (n - x)))
    return est.lo, est.hi


def test_every_summary_metric_has_a_known_truth_in_the_simulation():
    simulated = set().union(*(truths(s) for s in SCENARIOS))
    assert simulated == set(METRICS) | set(GUARD_METRICS)


@pytest.mark.parametrize("n", NS)
def test_one_sample_shares_cover_exactly(n):
    cover = {p: _exact_share_coverage(_one_sample, n, p) for p in SHARES}
    assert min(cover.values()) >= 0.93, cover


def test_plain_wilson_would_fail_the_same_check():
    def wilson(x, n):
        est = stats.wilson(x, n)
        return est.lo, est.hi

    assert min(_exact_share_coverage(wilson, n, p) for n in NS for p in SHARES) < 0.93


def _draw(rng, probs, n_items: int, samples: int, trials: int) -> np.ndarray:
    """Category index, shape (trials, items, samples); with samples > 1 each item has Dirichlet(2 × probs)."""
    p = np.asarray(probs, dtype=float)
    if samples == 1:
        per_item = np.broadcast_to(p, (trials, n_items, len(p)))
    else:
        per_item = rng.dirichlet(2.0 * p, size=(trials, n_items))
    cum = np.cumsum(per_item, axis=-1)
    u = rng.random((trials, n_items, samples))
    return np.minimum((u[..., None] > cum[:, :, None, :]).sum(-1), len(p) - 1)


def _coverage(make, truth: float, draws: np.ndarray) -> float:
    n_items, samples = draws.shape[1:]
    items = np.repeat(np.arange(n_items), samples)
    hits = 0
    for d in draws:
        est = make(d.ravel(), items)
        hits += est.lo - 1e-12 <= truth <= est.hi + 1e-12
    return hits / len(draws)


@pytest.mark.parametrize("samples", (1, 5))
def test_score_means_cover(samples):
    scores = np.arange(1.0, 6.0)
    low = {}
    for name, probs in SCORE_DISTRIBUTIONS.items():
        for n in NS:
            rng = np.random.default_rng(zlib.crc32(f"{name}|{n}|{samples}".encode()))
            draws = _draw(rng, probs, n, samples, TRIALS)
            cover = _coverage(lambda v, it: bounded_mean(scores[v], it, lo=1, hi=5), scores @ probs, draws)
            low[(name, n)] = cover
    assert min(low.values()) >= 0.93, sorted(low.items(), key=lambda kv: kv[1])[:5]


@pytest.mark.parametrize("p", (0.03, 0.5, 0.9))
def test_shares_of_repeated_samples_cover(p):
    low = {}
    for n in NS:
        rng = np.random.default_rng(int(1000 * p) + n)
        draws = _draw(rng, (p, 1 - p), n, 5, TRIALS)
        low[n] = _coverage(lambda v, it: proportion_ci((v == 0).astype(float), it), p, draws)
    assert min(low.values()) >= 0.93, low
