"""Token and cost accounting in the summary: per-row sums, summary.json's `cost` section, results and HTML tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fixtures.synthetic import SyntheticRun, cell_table, text_pool

from evalsvc.analysis.summary import summarize, summary_json
from evalsvc.render import format as fmt
from evalsvc.render.html import _cost_table


def _records() -> pa.Table:
    """Two models on one MCQ cell each: `api` has prices (cost per record), `local` only token counts."""
    spec = SyntheticRun(n_items=6, models=["api", "local"], benchmarks={"medguard": "mcq"}, strategies=["basic"],
                        error=0.0)  # fmt: skip
    pool = text_pool(64, 8)
    parts = []
    for mi, model in enumerate(spec.models):
        t = cell_table(spec, mi, "medguard", 0, pool)
        n = t.num_rows
        cost = [(10 * 1.0 + 4 * 3.0) / 1e6] * n if model == "api" else [None] * n
        for name, values in (("prompt_tokens", pa.array([10 + mi] * n, pa.int32())),
                             ("completion_tokens", pa.array([4] * n, pa.int32())),
                             ("cost_usd", pa.array(cost, pa.float64()))):  # fmt: skip
            t = t.set_column(t.schema.get_field_index(name), name, values)
        parts.append(t)
    return pa.concat_tables(parts)


def test_rows_sum_tokens_and_cost_and_the_json_has_a_cost_section():
    summary = summarize(_records())
    overall = {r["model"]: r for r in summary.filter(pc.equal(summary["group_field"], "overall")).to_pylist()}
    assert (overall["api"]["prompt_tokens"], overall["api"]["completion_tokens"]) == (60, 24)
    assert overall["api"]["cost_usd"] == pytest.approx(6 * 22e-6) and overall["local"]["cost_usd"] is None
    groups = [r for r in summary.to_pylist() if r["model"] == "api" and r["group_field"] == "principle"]
    assert groups and sum(r["prompt_tokens"] for r in groups) == 60
    cost = summary_json(summary)["cost"]
    assert cost["models"]["local"] == {"prompt_tokens": 66, "completion_tokens": 24, "cost_usd": None}
    assert cost["total"]["prompt_tokens"] == 126 and cost["total"]["cost_usd"] == pytest.approx(6 * 22e-6)


def test_results_and_html_show_a_cost_table():
    summary = summarize(_records())
    ((title, header, body),) = fmt.cost_sections(summary)
    assert header == ["model", "prompt tokens", "completion tokens", "cost (USD)"]
    assert body == [["api", "60", "24", "0.000132"], ["local", "66", "24", "–"], ["total", "126", "48", "0.000132"]]
    html = _cost_table(summary)
    assert 'id="cost-table"' in html and "0.000132" in html


def test_no_cost_table_without_token_counts():
    records = _records()
    for c in ("prompt_tokens", "completion_tokens"):
        records = records.set_column(records.schema.get_field_index(c), c, pa.nulls(records.num_rows, pa.int32()))
    assert fmt.cost_sections(summarize(records)) == [] and _cost_table(summarize(records)) == ""
