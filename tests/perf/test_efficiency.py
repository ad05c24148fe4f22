"""The efficiency suite's arithmetic and lever parsing (no engine: the timings are synthetic)."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.perf.efficiency import Levers, _headline, parse_levers, steady_numbers
from evalsvc.perf.report import BenchResult


@pytest.mark.parametrize(
    "text, expected",
    [
        ("16x8", Levers(16, 8)),
        ("64x16p256", Levers(64, 16, 256)),
        ("32x4p-1+nomp", Levers(32, 4, -1, True)),
        (" 8x2+nomp ", Levers(8, 2, None, True)),
    ],
)
def test_parse_levers(text, expected):
    lv = parse_levers(text)
    assert lv == expected
    assert parse_levers(lv.label) == lv  # the label reads back as the same setting


@pytest.mark.parametrize("bad", ["16", "x8", "16x8p", "16*8", "16x8+mp"])
def test_bad_levers_name_the_flag_and_the_form(bad):
    with pytest.raises(UserError, match="--config .*BATCHxCONCURRENT"):
        parse_levers(bad)


@pytest.mark.parametrize("bad", ["0x8", "16x0"])
def test_levers_must_be_positive(bad):
    with pytest.raises(UserError, match="at least 1"):
        parse_levers(bad)


def test_steady_state_runs_from_the_first_queued_request_to_the_last_token():
    # The run starts at t=100 (monotonic); the engine core queued requests at 120 and 121 and produced their
    # last tokens at 140 and 150: start-up is 20 s and generation spans 120 → 150.
    got = steady_numbers(t0=100.0, queued=[121.0, 120.0], last=[140.0, 150.0], tokens=600)
    assert got["startup_s"] == pytest.approx(20.0)
    assert got["steady_s"] == pytest.approx(30.0)
    assert got["steady_tok_s"] == pytest.approx(20.0)


def test_steady_state_skips_rows_without_engine_stats_and_is_none_without_any():
    assert steady_numbers(100.0, [None, None], [None, None], tokens=10) == {
        "startup_s": None, "steady_s": None, "steady_tok_s": None}  # fmt: skip
    got = steady_numbers(100.0, [None, 130.0, 0.0], [145.0, None, 160.0], tokens=300)
    assert got["startup_s"] == pytest.approx(30.0)  # 0.0 means "not recorded" in vLLM's stats
    assert got["steady_tok_s"] == pytest.approx(10.0)


def test_headline_names_the_product_default_and_the_best_setting():
    # The numbers of the 2026-11-22 08:28 run: 64x8 is both the product default and the best setting.
    r = BenchResult("efficiency", {})
    r.add(system="vllm.LLM", config="—")
    r.add(system="evalsvc", config="16x8", ratio_steady=0.814, ratio_e2e=0.745)
    r.add(system="evalsvc", config="64x8", ratio_steady=0.93, ratio_e2e=0.739)
    _headline(r)
    assert r.ratios["steady tokens/s evalsvc ÷ vllm.LLM (product default 64x8)"] == 0.93
    assert r.ratios["steady tokens/s evalsvc ÷ vllm.LLM (best: 64x8)"] == 0.93
    assert not any("16x8" in k for k in r.ratios)
    assert "settings reaching ≥ 0.9 of vllm.LLM excluding start-up: 64x8" in r.notes


def test_repeats_give_each_setting_its_median_ratio_and_range_and_the_baselines_spread():
    """Three interleaved repeats: each ratio is against its own repeat's baseline; the headline is the median."""
    r = BenchResult("efficiency", {})
    for rep, (base, ours) in enumerate([(200.0, 0.91), (300.0, 0.97), (250.0, 0.88)], start=1):
        r.add(system="vllm.LLM", config="—", repeat=rep, steady_tok_s=base, startup_s=30.0)
        r.add(system="evalsvc", config="64x8", repeat=rep, ratio_steady=ours, ratio_e2e=ours - 0.2)
    _headline(r)
    key = "steady tokens/s evalsvc ÷ vllm.LLM (product default 64x8, range 0.88–0.97 over 3 repeats)"
    assert r.ratios[key] == 0.91
    assert r.ratios["end-to-end tokens/s evalsvc ÷ vllm.LLM (best: 64x8, range 0.68–0.77 over 3 repeats)"] == \
        pytest.approx(0.71)
    assert any("200–300 steady tokens/s" in n for n in r.notes)
    assert any("≥ 0.9 of vllm.LLM excluding start-up: 64x8" in n for n in r.notes)
