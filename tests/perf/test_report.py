"""The result type every suite returns: ratios, number formatting, the JSON document and the rich table."""

from __future__ import annotations

import json

from rich.console import Console

from evalsvc.perf.report import BenchResult, columns, fmt, ratio, render, write_json


def test_ratio_is_none_when_a_side_is_missing_or_zero():
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(None, 4.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0) is None


def test_fmt_keeps_small_numbers_readable_and_groups_big_ones():
    assert fmt(None) == "—"
    assert fmt(float("nan")) == "—"
    assert fmt(0.91234) == "0.912"
    assert fmt(123.456) == "123.5"
    assert fmt(297496) == "297,496"
    assert fmt(12345.6) == "12,346"
    assert fmt(True) == "yes"
    assert fmt("16x8") == "16x8"


def test_columns_are_the_union_in_first_seen_order():
    assert columns([{"a": 1, "b": 2}, {"b": 3, "c": 4}]) == ["a", "b", "c"]


def test_add_stamps_each_row_with_the_load_average():
    r = BenchResult("x", {})
    row = r.add(system="s", wall_s=1.0)
    assert "load1" in row and r.rows == [row]
    kept = r.add(system="t", load1=9.5)
    assert kept["load1"] == 9.5


def test_json_document_round_trips(tmp_path):
    r = BenchResult("memory", {"sizes": [1000]}, env={"host_cpus": 2})
    r.add(records=1000, rss_peak_mib=312.5)
    r.ratios = {"peak RSS, largest ÷ smallest": 1.02}
    r.notes.append("flat")
    path = write_json(r, tmp_path / "out")
    doc = json.loads(path.read_text())
    assert path.name == "memory.json"
    assert doc["suite"] == "memory" and doc["params"] == {"sizes": [1000]}
    assert doc["rows"][0]["records"] == 1000 and doc["ratios"] == {"peak RSS, largest ÷ smallest": 1.02}
    assert doc["notes"] == ["flat"] and doc["env"]["host_cpus"] == 2


def test_table_shows_rows_ratios_and_notes():
    r = BenchResult("efficiency", {}, env={"load_avg_start": (1.0, 2.0, 3.0), "host_cpus": 2})
    r.add(system="vllm.LLM", config="—", tok_s=104.0)
    r.add(system="evalsvc", config="64x16", tok_s=98.0, ratio_steady=0.942)
    r.ratios = {"steady tokens/s evalsvc ÷ vllm.LLM": 0.942}
    r.notes.append("settings reaching ≥ 0.9: 64x16")
    console = Console(record=True, width=200)
    console.print(render(r))
    text = console.export_text()
    for expected in ("evalsvc bench efficiency", "vllm.LLM", "64x16", "0.942", "ratio_steady", "settings reaching"):
        assert expected in text
    assert "start (1.0, 2.0, 3.0)" in text
