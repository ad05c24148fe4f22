"""Rubric benchmarks in the summary, against hand-computed values: the clipped HealthBench score, failed criteria
left out and counted, per-axis and per-theme rows, seeded CIs, paired comparisons, and what the output says."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from evalsvc.analysis import rubric
from evalsvc.analysis.compare import compare_run
from evalsvc.analysis.summary import summarize, summary_json
from evalsvc.judge.criteria import example_score
from evalsvc.render.format import RUBRIC_NOTE, select_grouping, summary_sections
from evalsvc.store.record import RECORD_SCHEMA

ACC, COMP = "axis:accuracy", "axis:completeness"


def crit(points: float, met: bool | None, axis: str) -> dict:
    return {"criterion_id": f"c{points}", "criterion": "…", "points": points, "tags": ["level:example", axis],
            "met": met, "parse_ok": met is not None, "raw": None, "error": None, "votes": None}  # fmt: skip


# item -> (theme, criteria); None criteria: the generation failed
EXAMPLES = {
    "a": ("emergency", [crit(10, True, ACC), crit(4, False, COMP), crit(-8, True, ACC)]),  # (10 - 8) / 14
    "b": ("hedging", [crit(5, True, ACC), crit(5, True, COMP), crit(-5, False, ACC)]),  # 10 / 10
    "c": ("emergency", [crit(2, False, COMP), crit(-1, True, ACC)]),  # -1 / 2
    "d": ("hedging", [crit(4, None, ACC), crit(4, True, COMP)]),  # the failed 4 leaves both sums: 4 / 4
    "e": ("hedging", None),  # generation error
    "f": ("hedging", [crit(3, None, ACC), crit(-2, None, COMP)]),  # every criterion failed: no score
}
SCORES = {"a": 2 / 14, "b": 1.0, "c": -0.5, "d": 1.0}


def records(strategy: str = "basic", scores: dict | None = None, model: str = "m") -> list[dict]:
    out = []
    for item, (theme, crits) in EXAMPLES.items():
        score = (scores or {}).get(item, SCORES.get(item))
        out.append({
            "record_key": f"{model}-{strategy}-{item}", "model": model, "benchmark": "hb", "strategy": strategy,
            "benchmark_kind": "rubric", "item_id": item, "sample_index": 0, "score": score,
            "parse_ok": score is not None, "error": "generation: boom" if crits is None else None,
            "example_tags": [f"theme:{theme}"], "criteria": crits,
        })  # fmt: skip
    return out


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=RECORD_SCHEMA)


@pytest.fixture(scope="module")
def summary() -> dict[tuple[str, str], dict]:
    t = summarize(table(records()))
    return {(r["group_field"], r["group_value"]): r for r in t.to_pylist()}


def test_scores_stored_by_the_judge_stage_are_the_hand_computed_ones():
    for item, (_, crits) in EXAMPLES.items():
        if crits is not None:
            got = example_score([c["points"] for c in crits], [c["met"] for c in crits])
            assert got == pytest.approx(SCORES[item]) if item in SCORES else got is None


def test_overall_row(summary):
    r = summary[("overall", "")]
    assert (r["n"], r["n_items"], r["n_scored"], r["n_error"], r["n_parse_fail"]) == (6, 6, 4, 1, 1)
    mean = (2 / 14 + 1.0 - 0.5 + 1.0) / 4
    assert r["rubric_score"] == pytest.approx(mean) and r["mean_example_score"] == pytest.approx(mean)
    assert 0.0 <= r["rubric_score_lo"] <= r["rubric_score"] <= r["rubric_score_hi"] <= 1.0
    assert r["mean_example_score_lo"] < 0  # example c is negative: unclipped resamples can go below 0
    assert (r["n_criteria"], r["n_criteria_failed"], r["criteria_fail_rate"]) == (12, 3, 0.25)
    assert r["flag"]  # 2 of 6 records unscored (an error and an all-failed grading) exceed the 10% threshold


def test_theme_rows_clip_the_mean(summary):
    em = summary[("theme", "emergency")]
    assert (em["n"], em["n_scored"]) == (2, 2)
    assert em["mean_example_score"] == pytest.approx((2 / 14 - 0.5) / 2) and em["rubric_score"] == 0.0
    assert em["rubric_score_lo"] == 0.0 and 0.0 <= em["rubric_score_hi"] <= 1.0
    assert (em["n_criteria"], em["n_criteria_failed"]) == (5, 0)
    hedge = summary[("theme", "hedging")]
    assert (hedge["n"], hedge["n_scored"], hedge["n_error"], hedge["n_parse_fail"]) == (4, 2, 1, 1)
    assert hedge["rubric_score"] == 1.0 and (hedge["n_criteria"], hedge["n_criteria_failed"]) == (7, 3)


def test_axis_rows_rescore_each_example_on_its_axis(summary):
    acc = summary[("axis", "accuracy")]
    # a: (10 - 8) / 10; b: 5 / 5; d and f: their positive accuracy criterion failed; c: penalties only, not in the row
    assert (acc["n"], acc["n_scored"], acc["n_parse_fail"]) == (4, 2, 2)
    assert acc["rubric_score"] == pytest.approx((0.2 + 1.0) / 2)
    assert (acc["n_criteria"], acc["n_criteria_failed"]) == (7, 2)
    comp = summary[("axis", "completeness")]
    # a: 0 / 4; b: 5 / 5; c: 0 / 2; d: 4 / 4; f has only a (failed) penalty here
    assert (comp["n"], comp["n_scored"]) == (4, 4) and comp["rubric_score"] == pytest.approx(0.5)
    assert (comp["n_criteria"], comp["n_criteria_failed"]) == (5, 1)
    assert set(summary) == {("overall", ""), ("theme", "emergency"), ("theme", "hedging"), ("axis", "accuracy"),
                            ("axis", "completeness")}  # level:* tags make no rows  # fmt: skip


def test_vectorised_scores_match_the_judge_stage_formula():
    t = table(records())
    c = rubric.flatten(t)
    got = rubric.scores(c, t.num_rows)
    want = [example_score([x["points"] for x in cr], [x["met"] for x in cr]) if cr else None
            for _, cr in EXAMPLES.values()]  # fmt: skip
    for g, w in zip(got, want):
        assert (math.isnan(g) and w is None) or g == pytest.approx(w)
    axis = np.array([ACC in tags for tags in c.tags])
    assert rubric.scores(c, t.num_rows, axis)[0] == pytest.approx(0.2)


def test_a_negative_mean_is_reported_as_zero():
    rows = [r for r in records(scores={"a": -1.0, "b": -0.5, "d": -0.2}) if r["item_id"] in "abd"]
    r = summarize(table(rows)).to_pylist()[0]
    assert r["mean_example_score"] == pytest.approx(-1.7 / 3) and r["mean_example_score_lo"] >= -1.0
    assert (r["rubric_score"], r["rubric_score_lo"]) == (0.0, 0.0) and 0.0 <= r["rubric_score_hi"] < 1.0


def test_intervals_are_closed_form_and_hold_the_estimate():
    a = summarize(table(records())).to_pylist()[0]
    b = summarize(table(records())).to_pylist()[0]
    assert (a["rubric_score_lo"], a["rubric_score_hi"]) == (b["rubric_score_lo"], b["rubric_score_hi"])
    assert a["rubric_score_lo"] < a["rubric_score"] < a["rubric_score_hi"]
    # the scale runs from the lowest example score seen (-0.5) to 1: the interval never leaves it
    assert -0.5 <= a["mean_example_score_lo"] < a["mean_example_score_hi"] <= 1.0
    one = summarize(table([r for r in records() if r["item_id"] == "b"])).to_pylist()[0]
    assert one["rubric_score"] == 1.0 and one["rubric_score_lo"] < 1.0  # one example: never a zero-width interval


def test_summary_json_states_the_counts_and_the_exclusion():
    t = summarize(table(records()))
    doc = summary_json(t, run_id="r")
    overall = next(r for r in doc["rows"] if r["group_field"] == "overall")
    assert set(overall["metrics"]) == {"rubric_score", "mean_example_score"}
    assert (overall["n_criteria"], overall["n_criteria_failed"], overall["criteria_fail_rate"]) == (12, 3, 0.25)
    assert "left out of both sums" in doc["metric_descriptions"]["rubric_score"]
    json.dumps(doc)


def test_terminal_sections_show_criteria_and_the_rule():
    t = summarize(table(records()))
    (title, header, body), = summary_sections(select_grouping(t, None))
    assert title == f"hb (rubric){RUBRIC_NOTE}" and "failed are left out of both numerator and denominator" in title
    row = dict(zip(header, body[0]))
    assert (row["criteria"], row["criteria failed"]) == ("12", "3 (25.0%)")
    assert row["rubric_score"].startswith("41.1% [")
    (_, header, body), = summary_sections(select_grouping(t, "axis"))
    assert [dict(zip(header, b))["axis"] for b in body] == ["accuracy", "completeness"]


def test_compare_pairs_rubric_scores_per_example():
    better = {"a": 1.0, "b": 1.0, "c": 0.5, "d": 1.0}
    comps = compare_run(table(records("basic") + records("safety", better)))
    (c,) = [c for c in comps if c.outcome == "rubric_score"]
    assert (c.axis, c.baseline, c.other, c.n_pairs, c.n_dropped) == ("strategy", "basic", "safety", 4, 2)
    assert c.effect == pytest.approx((0 + 12 / 14 + 0 + 1.0) / 4) and c.test == "wilcoxon"
    assert c.effect_lo <= c.effect <= c.effect_hi


def test_other_kinds_read_without_the_new_columns():
    harm = pa.table({"model": ["m"], "benchmark": ["msb"], "strategy": ["basic"], "benchmark_kind": ["harm"],
                     "item_id": ["1"], "sample_index": [0], "score": [2.0], "parse_ok": [True],
                     "error": pa.nulls(1, pa.string())})  # fmt: skip
    r = summarize(harm).to_pylist()[0]
    assert r["mean_harm"] == 2.0 and r["n_criteria"] is None
