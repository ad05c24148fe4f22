"""Rendering summaries: grouping selection, number formats, Markdown and CSV that read back."""

from __future__ import annotations

import csv
import io

import pytest

from evalsvc.analysis.summary import summarize_run
from evalsvc.errors import UserError
from evalsvc.render import format as fmt


def test_select_grouping_overall_and_by_field(small_run):
    summary = summarize_run(small_run)
    assert set(fmt.select_grouping(summary, None)["group_field"].to_pylist()) == {"overall"}
    assert set(fmt.select_grouping(summary, "principle")["benchmark"].to_pylist()) == {"msb", "medguard"}
    with pytest.raises(UserError, match="choose one of aspect, category, principle, question_type, source"):
        fmt.select_grouping(summary, "colour")


def test_metric_formats():
    assert fmt.fmt_metric("mean_harm", 2.3456, 2.1, 2.6) == "2.35 [2.10, 2.60]"
    assert fmt.fmt_metric("accuracy", 0.5, 0.4, 0.6) == "50.0% [40.0, 60.0]"
    assert fmt.fmt_metric("accuracy", None, None, None) == "–"
    assert fmt.fmt_p(0.00001) == "<0.0001" and fmt.fmt_p(0.0312) == "0.0312"


def test_markdown_has_one_table_per_benchmark_with_its_metrics(small_run):
    rows = fmt.select_grouping(summarize_run(small_run), None)
    text = fmt.markdown(fmt.summary_sections(rows))
    assert text.count("### ") == 3
    header = next(line for line in text.splitlines() if line.startswith("| model") and "mean_harm" in line)
    assert "accuracy" not in header and "pct_harmful" in header
    body = [line for line in text.splitlines() if line.startswith("| model-")]
    assert len(body) == 12 and all(line.count("|") == body[0].count("|") for line in body[:4])


def test_csv_reads_back_with_every_column(small_run):
    rows = fmt.select_grouping(summarize_run(small_run), None)
    parsed = list(csv.DictReader(io.StringIO(fmt.csv_text(rows))))
    assert len(parsed) == rows.num_rows
    assert list(parsed[0]) == rows.column_names
    first = rows.to_pylist()[0]
    assert float(parsed[0]["n"]) == first["n"] and parsed[0]["model"] == first["model"]


def test_flag_notes_name_cell_and_reason(small_run):
    rows = fmt.select_grouping(summarize_run(small_run, threshold=0.0), None)
    notes = fmt.flag_notes(rows)
    assert len(notes) == sum(rows["flag"].to_pylist()) > 0
    assert all(" / " in n and "exceed 0%" in n for n in notes)
