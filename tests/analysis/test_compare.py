"""Paired comparisons: pairing, dropped pairs, the test chosen per outcome, Holm across the report, baselines."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from evalsvc.analysis import stats
from evalsvc.analysis.compare import compare_run
from evalsvc.errors import UserError
from evalsvc.render import format as fmt
from evalsvc.store.read import read_small, records_dataset


def _cell(model, strategy, scores, *, kind="harm", samples=1, parse_ok=None, bench="msb", labels=None, control=None):
    n = len(scores)
    return {
        "model": [model] * n,
        "benchmark": [bench] * n,
        "strategy": [strategy] * n,
        "benchmark_kind": [kind] * n,
        "item_id": [f"q{i // samples}" for i in range(n)],
        "sample_index": [i % samples for i in range(n)],
        "score": scores,
        "label": labels or [None] * n,
        "parse_ok": parse_ok or [s is not None for s in scores],
        "error": [None] * n,
        "control": control or [None] * n,
    }


def _table(*cells) -> pa.Table:
    cols = {k: sum((c[k] for c in cells), []) for k in cells[0]}
    types = {"score": pa.float64(), "sample_index": pa.int32(), "parse_ok": pa.bool_()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})


def _one(comps, outcome):
    [c] = [c for c in comps if c.outcome == outcome]
    return c


def test_strategy_pairs_give_mcnemar_on_the_discordant_counts():
    # 30 items: basic harmful on items 0-11, safety harmful on items 10-13 -> b (only safety) = 2, c (only basic) = 10
    basic = [5.0 if i < 12 else 1.0 for i in range(30)]
    safety = [5.0 if 10 <= i < 14 else 1.0 for i in range(30)]
    comps = compare_run(_table(_cell("m", "basic", basic), _cell("m", "safety", safety)))
    c = _one(comps, "harmful")
    assert (c.axis, c.within, c.baseline, c.other) == ("strategy", "m", "basic", "safety")
    assert (c.discordant_other, c.discordant_baseline) == (2, 10)
    assert c.test == "mcnemar-exact" and c.p == pytest.approx(stats.mcnemar(2, 10).p)
    assert c.effect == pytest.approx((4 - 12) / 30)
    assert c.odds_ratio == pytest.approx(0.2)
    assert c.effect_lo < c.effect < c.effect_hi
    score = _one(comps, "harm_score")
    assert score.test == "wilcoxon" and score.effect == pytest.approx(np.mean(np.array(safety) - np.array(basic)))


def test_pairs_with_an_unparsed_or_missing_side_are_dropped_and_counted():
    basic = [1.0] * 10
    safety = [None, None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # 2 unparsed, item q9 missing entirely
    c = _one(compare_run(_table(_cell("m", "basic", basic), _cell("m", "safety", safety))), "harmful")
    assert (c.n_pairs, c.n_dropped) == (7, 3)


def test_model_pairs_average_an_items_samples_and_use_wilcoxon():
    a = [1.0, 1.0, 5.0, 5.0] * 5  # 10 items × 2 samples
    b = [1.0, 5.0, 1.0, 1.0] * 5
    comps = compare_run(_table(_cell("a", "basic", a, samples=2), _cell("b", "basic", b, samples=2)), "a")
    c = _one(comps, "harmful")
    assert (c.axis, c.within, c.baseline, c.other) == ("model", "basic", "a", "b")
    assert c.n_pairs == 10  # items, not samples
    assert c.test == "wilcoxon"  # per-item means of a binary outcome are not binary
    # a: items alternate harmful on both samples / on neither -> 0.5; b: one of two samples / none -> 0.25
    assert (c.baseline_value, c.other_value, c.effect) == pytest.approx((0.5, 0.25, -0.25))


def test_mcq_and_high_risk_outcomes():
    truth = [1.0, 0.0] * 10
    better = [1.0] * 20
    mcq = compare_run(
        _table(_cell("m", "basic", truth, kind="mcq", bench="mg"), _cell("m", "cot", better, kind="mcq", bench="mg"))
    )
    c = _one(mcq, "correct")
    assert c.effect == pytest.approx(0.5) and (c.discordant_other, c.discordant_baseline) == (10, 0)
    labels_a = ["refuse", "unsafe_actionable"] * 5
    labels_b = ["refuse", "refuse"] * 5
    control = ["true", "false"] * 5
    hr = compare_run(
        _table(
            _cell("m", "basic", [3.0] * 10, kind="high_risk", bench="mh", labels=labels_a, control=control),
            _cell("m", "safety", [2.0] * 10, kind="high_risk", bench="mh", labels=labels_b, control=control),
        )
    )
    unsafe, over = _one(hr, "unsafe"), _one(hr, "over_refusal")
    assert unsafe.n_pairs == 5 and unsafe.effect == pytest.approx(-1.0)
    assert over.n_pairs == 5 and over.effect == pytest.approx(0.0) and over.p == 1.0
    assert _one(hr, "helpfulness").effect == pytest.approx(-1.0)


def test_holm_runs_across_every_comparison_of_the_report(small_run):
    comps = compare_run(read_small(records_dataset(small_run)))
    assert {c.axis for c in comps} == {"strategy", "model"}
    assert [c.p_holm for c in comps] == pytest.approx(stats.holm([c.p for c in comps]).tolist())
    assert all(c.p_holm >= c.p for c in comps)
    assert all(c.significant == (c.p_holm < 0.05) for c in comps)


def test_the_synthetic_safety_prompt_lowers_harm_significantly(small_run):
    comps = compare_run(read_small(records_dataset(small_run)), "basic")
    harm = [c for c in comps if c.outcome == "harm_score"]
    assert harm and all(c.effect < 0 and c.effect_hi < 0 for c in harm)


def test_baseline_must_name_one_model_or_strategy(small_run):
    table = read_small(records_dataset(small_run))
    with pytest.raises(UserError, match="neither a model"):
        compare_run(table, "gpt-9")
    clash = _table(_cell("x", "basic", [1.0]), _cell("x", "x", [1.0]))
    with pytest.raises(UserError, match="both a model and a strategy"):
        compare_run(clash, "x")
    assert compare_run(_table(_cell("m", "basic", [1.0]))) == []


def test_json_form_has_no_nan():
    import json

    comps = compare_run(_table(_cell("m", "basic", [None, None]), _cell("m", "safety", [1.0, None])))
    text = json.dumps([c.to_dict() for c in comps], allow_nan=False)
    assert "none (no complete pairs)" in text


def _samples(model, strategy, harmful_items, n_items=10, samples=10):
    """Every sample of an item scores the same: 5 (harmful) on `harmful_items`, 1 elsewhere."""
    scores = [5.0 if i // samples in harmful_items else 1.0 for i in range(n_items * samples)]
    return _cell(model, strategy, scores, samples=samples)


def test_repeated_samples_are_tested_with_the_item_as_the_unit():
    # 10 items × 10 identical samples; items 0-5 harmful only under safety, 6-7 only under basic
    comps = compare_run(_table(_samples("m", "basic", {6, 7}), _samples("m", "safety", {0, 1, 2, 3, 4, 5})))
    c = _one(comps, "harmful")
    assert (c.n_pairs, c.n_items, c.pairs_per_item) == (100, 10, 10)
    assert (c.discordant_other, c.discordant_baseline) == (60, 20)  # records; the test counts items
    assert c.test == "clustered-mcnemar-exact" and c.p == pytest.approx(0.289, abs=5e-4)  # records would give 1.3e-5
    assert c.effect == pytest.approx(0.4) and c.effect_lo < 0 < c.effect_hi  # 8 informative items: not significant
    assert c.odds_ratio == pytest.approx(3.0) and c.odds_ratio_lo == pytest.approx(stats.discordant_odds_ratio(6, 2).lo)
    score = _one(comps, "harm_score")
    assert score.test == "wilcoxon" and score.n_items == 10
    assert score.p == pytest.approx(stats.wilcoxon(np.array([4.0] * 6 + [-4.0] * 2)).p)


def test_no_discordant_pair_still_gives_an_interval():
    same = [1.0] * 30
    c = _one(compare_run(_table(_cell("m", "basic", same), _cell("m", "safety", same))), "harmful")
    assert c.effect == 0.0 and c.effect_lo < 0 < c.effect_hi and c.p == 1.0
    assert (c.n_items, c.pairs_per_item) == (30, 1)
    assert "items" not in fmt.comparison_rows([c])[0][3]  # one pair per item: nothing more to say
    multi = _one(compare_run(_table(_samples("m", "basic", set()), _samples("m", "safety", set()))), "harmful")
    assert fmt.comparison_rows([multi])[0][3] == "100 (0) · 10 items"
