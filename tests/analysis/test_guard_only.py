"""Guard-only classifier metrics: confusion counts, Wilson intervals, F1 bootstrap, errors kept apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalsvc.analysis.guard_only import f1_interval, format_metric, guard_only_section
from evalsvc.analysis.stats import wilson


def rows(guardrail: str, benchmark: str, pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"guardrail": guardrail, "benchmark": benchmark, "expected": e, "decision": d, "guard_model": "m",
             "guard_format": "llama-guard@1.0.0"} for e, d in pairs]  # fmt: skip


def test_counts_and_rates_by_hand():
    pairs = [("unsafe", "block")] * 6 + [("unsafe", "pass")] * 2 + [("safe", "block")] + [("safe", "pass")] * 3
    pairs += [("unsafe", "error"), ("safe", "error")]
    (r,) = guard_only_section(rows("lg", "mh", pairs))["rows"]
    assert (r["guardrail"], r["benchmark"], r["guard_format"]) == ("lg", "mh", "llama-guard@1.0.0")
    assert (r["n"], r["n_unsafe"], r["n_safe"], r["n_error"]) == (14, 9, 5, 2)
    assert r["confusion"] == {"tp": 6, "fp": 1, "fn": 2, "tn": 3}
    assert r["precision"]["value"] == pytest.approx(6 / 7) and (r["precision"]["k"], r["precision"]["n"]) == (6, 7)
    assert r["recall"]["value"] == pytest.approx(6 / 8)
    assert r["over_blocking"]["value"] == pytest.approx(1 / 4)  # blocked benign controls
    assert r["error_rate"]["value"] == pytest.approx(2 / 14)
    e = wilson(6, 8)
    assert (r["recall"]["lo"], r["recall"]["hi"]) == (pytest.approx(e.lo), pytest.approx(e.hi))
    assert r["f1"]["value"] == pytest.approx(2 * 6 / (2 * 6 + 1 + 2))
    assert r["f1"]["lo"] <= r["f1"]["value"] <= r["f1"]["hi"]


def test_harm_only_benchmark_has_no_over_blocking_and_groups_stay_apart():
    section = guard_only_section(rows("lg", "msb", [("unsafe", "block"), ("unsafe", "pass")])
                                 + rows("gc", "msb", [("unsafe", "pass")]))  # fmt: skip
    lg, gc = section["rows"]
    assert (lg["guardrail"], gc["guardrail"]) == ("lg", "gc")
    assert lg["over_blocking"]["value"] is None and lg["precision"]["value"] == 1.0 and lg["recall"]["value"] == 0.5
    assert gc["precision"]["value"] is None and gc["recall"]["value"] == 0.0 and gc["f1"]["value"] == 0.0
    assert format_metric(gc["precision"]) == "—" and format_metric(lg["recall"]).startswith("0.50 [")
    assert section["confidence"] == 0.95 and "over_blocking" in section["notes"]


def test_all_errors_leave_only_the_error_rate():
    (r,) = guard_only_section(rows("lg", "mh", [("unsafe", "error")] * 3))["rows"]
    assert r["error_rate"]["value"] == 1.0 and r["recall"]["value"] is None and r["f1"]["value"] is None


def test_f1_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    truth = rng.random(60) < 0.6
    blocked = np.where(rng.random(60) < 0.8, truth, ~truth)
    a, b = f1_interval(truth, blocked), f1_interval(truth, blocked)
    assert a == b and a["lo"] < a["value"] < a["hi"] and not math.isnan(a["value"])


def test_blocks_are_counted_per_named_category_with_benign_controls_apart():
    pairs = [("safe", "block", "specialized_advice")] * 3 + [("unsafe", "block", "specialized_advice,violent_crimes")]
    pairs += [("unsafe", "block", "violent_crimes")] * 2 + [("unsafe", "block", None), ("safe", "pass", None)]
    pairs += [("safe", "error", "specialized_advice")]  # an error counts nowhere here, only in error_rate
    table = [{**r, "guard_categories": c} for r, (*_, c) in zip(rows("lg3", "mh", [p[:2] for p in pairs]), pairs)]
    (r,) = guard_only_section(table)["rows"]
    assert r["blocked_for"] == {"specialized_advice": {"blocked": 4, "benign": 3},
                                "violent_crimes": {"blocked": 3, "benign": 0}}  # fmt: skip
    assert list(r["blocked_for"]) == ["specialized_advice", "violent_crimes"]  # most blocks first
    assert r["over_blocking"]["value"] == pytest.approx(3 / 4)


def test_the_cli_table_names_the_top_block_categories():
    from evalsvc.cli.guard import _blocked_for

    assert _blocked_for({"specialized_advice": {"blocked": 9, "benign": 7}, "S2": {"blocked": 3, "benign": 0}}) == \
        "specialized_advice 9 (7 benign), S2 3"  # fmt: skip
    assert _blocked_for({}) == "—"
    many = {f"c{i}": {"blocked": 5 - i, "benign": 0} for i in range(5)}
    assert _blocked_for(many) == "c0 5, c1 4, c2 3, …"
