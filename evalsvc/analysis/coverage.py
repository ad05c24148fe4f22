"""Known-truth simulation of the summary's intervals and the paired tests: coverage of every metric's 95% interval
and the false-positive rate of every comparison when nothing differs. `python -m evalsvc.analysis.coverage` prints both.

Uses only `metrics.compute`, `guardrails.compute_guard` and `compare.compare_run`, so it measures what a run reports.
"""

from __future__ import annotations

import argparse
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from evalsvc.analysis.guardrails import compute_guard
from evalsvc.analysis.metrics import HIGH_RISK_LABELS, Rows, compute

NS = (5, 10, 20, 40, 100)
SCORES = np.arange(1, 6, dtype=float)
ADVICE = 0.4  # guarded scenarios: share of blocks whose categories name specialized advice


@dataclass(frozen=True)
class Scenario:
    """One data-generating process: category probabilities of a kind, the same for every item on average.

    With several samples per item each item draws its own probabilities from Dirichlet(concentration × probs), so
    an item's samples agree more than two items do (the concentration sets how much: 2 gives an ICC near 0.3).
    """

    name: str
    kind: str  # harm: probs of scores 1-5; mcq: (P(correct),); high_risk: probs of HIGH_RISK_LABELS; rubric: of RUBRIC_VALUES
    probs: tuple[float, ...]
    helpful: tuple[float, ...] = (0.05, 0.1, 0.25, 0.3, 0.3)  # high_risk: helpfulness scores 1-5
    control_refuse: float = 0.2  # high_risk: P(refuse) on benign controls
    guard: tuple[float, float] | None = None  # (P(input blocks), P(output blocks)); both err 3%; ADVICE of blocks S6


SCENARIOS = (
    Scenario("harm, safe model (80% 1s)", "harm", (0.80, 0.08, 0.05, 0.04, 0.03)),
    Scenario("harm, very safe (92% 1s, 3% harmful)", "harm", (0.92, 0.03, 0.02, 0.02, 0.01)),
    Scenario("harm, mid-scale", "harm", (0.1, 0.2, 0.4, 0.2, 0.1)),
    Scenario("mcq, 50% correct", "mcq", (0.5,)),
    Scenario("mcq, 97% correct", "mcq", (0.97,)),
    Scenario("high-risk, 3% unsafe, guarded", "high_risk", (0.5, 0.25, 0.22, 0.03), guard=(0.3, 0.1)),
    Scenario("rubric, mid-range scores", "rubric", (0.05, 0.1, 0.2, 0.3, 0.2, 0.15)),
    Scenario("rubric, mostly perfect", "rubric", (0.0, 0.0, 0.05, 0.1, 0.15, 0.7)),
    Scenario("rubric, penalties outweigh (clipped to 0)", "rubric", (0.6, 0.2, 0.1, 0.05, 0.05, 0.0)),
)
RUBRIC_VALUES = np.array([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0])  # rubric: example scores (met ÷ positive points)


def truths(s: Scenario) -> dict[str, float]:
    """The value each metric estimates under `s`."""
    p = np.asarray(s.probs)
    if s.kind == "harm":
        return {"mean_harm": float(SCORES @ p), "pct_score1": p[0], "pct_harmful": p[3] + p[4]}
    if s.kind == "mcq":
        return {"accuracy": p[0], "safety_index": p[0]}
    if s.kind == "rubric":
        mean = float(RUBRIC_VALUES @ p)
        return {"mean_example_score": mean, "rubric_score": min(1.0, max(0.0, mean))}
    labels = dict(zip(HIGH_RISK_LABELS, p))
    out = {f"{m}": labels[lab] for m, lab in (("refuse_rate", "refuse"), ("safe_redirect_rate", "safe_redirect"),
                                                ("cautious_rate", "cautious_answer"), ("unsafe_rate", "unsafe_actionable"))}  # fmt: skip
    out |= {"over_refusal": s.control_refuse, "mean_helpfulness": float(SCORES @ np.asarray(s.helpful))}
    if s.guard:
        pin, pout = s.guard
        blocked = pin + (1 - pin - 0.03) * pout
        out |= {"blocked_rate": blocked, "blocked_input": pin, "blocked_output": pout, "over_block": blocked,
                "guard_error_rate": 0.03 + (1 - pin - 0.03) * 0.03, "unsafe_after_guard": labels["unsafe_actionable"],
                "helpful_after_guard": out["mean_helpfulness"], "blocked_specialized_advice": blocked * ADVICE,
                "over_block_specialized_advice": blocked * ADVICE}  # fmt: skip
    return out


def _draw(rng, probs, n_items: int, samples: int, conc: float) -> np.ndarray:
    """Category index per record (items × samples, row-major)."""
    p = np.asarray(probs, dtype=float)
    per_item = np.tile(p, (n_items, 1)) if samples == 1 else rng.dirichlet(conc * p, size=n_items)
    cum = np.cumsum(per_item, axis=1)
    u = rng.random((n_items, samples))
    return np.minimum((u[:, :, None] > cum[:, None, :]).sum(-1), len(p) - 1).ravel()


def simulate_rows(s: Scenario, n_items: int, samples: int, rng, conc: float = 2.0) -> Rows:
    """The Rows of one simulated cell: n_items items × samples, every record scored."""
    n = n_items * samples
    item = np.repeat(np.arange(n_items), samples)
    nones = np.full(n, None, dtype=object)
    score, label = np.full(n, np.nan), nones.copy()
    control = np.zeros(n, dtype=bool)
    guard_in, guard_out, categories = nones.copy(), nones.copy(), nones.copy()
    if s.kind == "harm":
        score = SCORES[_draw(rng, s.probs, n_items, samples, conc)]
    elif s.kind == "rubric":
        score = RUBRIC_VALUES[_draw(rng, s.probs, n_items, samples, conc)]
    elif s.kind == "mcq":
        score = (_draw(rng, (s.probs[0], 1 - s.probs[0]), n_items, samples, conc) == 0).astype(float)
    else:
        control = np.repeat(np.arange(n_items) % 3 == 2, samples)  # a third of the items are benign controls
        risky = np.array(HIGH_RISK_LABELS, dtype=object)[_draw(rng, s.probs, n_items, samples, conc)]
        refused = _draw(rng, (s.control_refuse, 1 - s.control_refuse), n_items, samples, conc) == 0
        label = np.where(control, np.where(refused, "refuse", "cautious_answer"), risky).astype(object)
        score = SCORES[_draw(rng, s.helpful, n_items, samples, conc)]
        if s.guard:
            pin, pout = s.guard
            guard_in = np.array(["block", "error", "pass"], dtype=object)[
                _draw(rng, (pin, 0.03, 1 - pin - 0.03), n_items, samples, conc)]  # fmt: skip
            out = np.array(["block", "error", "pass"], dtype=object)[
                _draw(rng, (pout, 0.03, 1 - pout - 0.03), n_items, samples, conc)]  # fmt: skip
            guard_out = np.where(guard_in == "pass", out, None).astype(object)
            advice = _draw(rng, (ADVICE, 1 - ADVICE), n_items, samples, conc) == 0
            blocked = (guard_in == "block") | (guard_out == "block")
            categories = np.where(blocked, np.where(advice, "specialized_advice", "violent_crimes"), None).astype(object)
    safety = np.repeat(np.arange(n_items) % 2 == 0, samples)
    return Rows(s.kind, item, np.tile(np.arange(samples), n_items), score, label, np.ones(n, dtype=bool),
                np.zeros(n, dtype=bool), control, safety, {}, guard_in, guard_out, categories)  # fmt: skip


def coverage(scenarios=SCENARIOS, ns=NS, samples=(1, 5), trials: int = 400, seed: int = 0) -> dict[tuple, float]:
    """{(scenario name, metric, samples per item, n items): share of trials whose interval holds the truth}."""
    out: dict[tuple, float] = {}
    for s in scenarios:
        truth = truths(s)
        for k in samples:
            for n in ns:
                rng = np.random.default_rng(zlib.crc32(f"{seed}|{s.name}|{k}|{n}".encode()))
                hits = dict.fromkeys(truth, 0)
                for _ in range(trials):
                    rows = simulate_rows(s, n, k, rng)
                    est = {**compute(rows), **compute_guard(rows, "g" if s.guard else None)}
                    for m, value in truth.items():
                        hits[m] += bool(est[m].lo - 1e-12 <= value <= est[m].hi + 1e-12)
                out |= {(s.name, m, k, n): h / trials for m, h in hits.items()}
    return out


def null_table(rng, n_items: int, samples: int) -> pa.Table:
    """Records of 2 models × 2 strategies on one harm benchmark where nothing differs on average: each item has
    score probabilities, and each cell its own draw around them (Dirichlet(2 × the item's)), so a strategy or model
    helps on some items and hurts on others, exchangeably. Samples of an item share its cell's probabilities."""
    per_item = rng.dirichlet(2.0 * np.array([0.55, 0.1, 0.1, 0.1, 0.15]), size=n_items)
    cols: dict[str, list] = {c: [] for c in ("model", "benchmark", "strategy", "benchmark_kind", "item_id",
                                             "sample_index", "score", "parse_ok", "error")}  # fmt: skip
    for model in ("model-a", "model-b"):
        for strategy in ("basic", "safety"):
            cum = np.cumsum([rng.dirichlet(2.0 * p + 1e-3) for p in per_item], axis=1)
            u = rng.random((n_items, samples))
            scores = ((u[:, :, None] > cum[:, None, :]).sum(-1) + 1).clip(1, 5).ravel().astype(float)
            n = n_items * samples
            cols["model"] += [model] * n
            cols["strategy"] += [strategy] * n
            cols["item_id"] += [f"q{i // samples}" for i in range(n)]
            cols["sample_index"] += [i % samples for i in range(n)]
            cols["score"] += scores.tolist()
    n_all = len(cols["score"])
    cols.update(benchmark=["msb"] * n_all, benchmark_kind=["harm"] * n_all, parse_ok=[True] * n_all,
                error=[None] * n_all)  # fmt: skip
    return pa.table({**cols, "error": pa.array(cols["error"], pa.string())})


def false_positive_rates(n_items: int = 30, samples: int = 5, trials: int = 200, alpha: float = 0.05, seed: int = 0):
    """{(axis, outcome, test names seen): share of trials rejecting at `alpha` (unadjusted p) with no true difference}."""
    from evalsvc.analysis.compare import compare_run

    rng = np.random.default_rng(zlib.crc32(f"fpr|{seed}|{n_items}|{samples}".encode()))
    rejections: dict[tuple, list] = {}
    for _ in range(trials):
        for c in compare_run(null_table(rng, n_items, samples)):
            rejections.setdefault((c.axis, c.outcome), []).append((c.p is not None and c.p < alpha, c.test))
    return {(axis, outcome, "/".join(sorted({t for _, t in r}))): float(np.mean([x for x, _ in r]))
            for (axis, outcome), r in rejections.items()}  # fmt: skip


def table_lines(cov: dict[tuple, float], full: bool = False) -> list[str]:
    """One line per metric and samples per item (the lowest coverage over scenarios), or per scenario too."""
    groups: dict[tuple, dict[int, list[float]]] = {}
    for (scenario, metric, k, n), v in cov.items():
        groups.setdefault((scenario, metric, k) if full else (metric, k), {}).setdefault(n, []).append(v)
    out = []
    for key in sorted(groups):
        *name, k = key
        cells = " ".join(f"{min(groups[key][n]):.3f}" for n in NS)
        out.append(f"  {' / '.join(name):58s} {k} sample{'s' if k > 1 else ' '}  {cells}")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=400, help="simulated cells per coverage entry")
    ap.add_argument("--fpr-trials", type=int, default=200, help="simulated runs per false-positive rate")
    ap.add_argument("--full", action="store_true", help="a line per scenario (default: the lowest per metric)")
    args = ap.parse_args(argv)
    cov = coverage(trials=args.trials)
    print(f"coverage of 95% intervals, {args.trials} simulated cells each; n items = {', '.join(map(str, NS))}")
    print("\n".join(table_lines(cov, args.full)))
    print(f"  lowest: {min(cov.values()):.3f}")
    for k in (1, 5):
        fpr = false_positive_rates(samples=k, trials=args.fpr_trials)
        print(f"false-positive rate at alpha 0.05, 30 items x {k} sample(s), {args.fpr_trials} null runs:")
        for (axis, outcome, tests), rate in sorted(fpr.items()):
            print(f"  {axis:9s} {outcome:11s} {rate:.3f}  ({tests})")


if __name__ == "__main__":
    main()
