"""recompute_check must catch a summary that disagrees with its records (else it proves nothing)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from evalsvc.analysis.check import recompute_check
from evalsvc.analysis.summary import summarize
from evalsvc.store.read import read_small, records_dataset


def _replace(table: pa.Table, name: str, index: int, value) -> pa.Table:
    values = table[name].to_pylist()
    values[index] = value
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type))


def test_recompute_check_reports_a_tampered_metric_count_and_interval(small_run):
    records = read_small(records_dataset(small_run))
    summary = summarize(records)
    harm = pc.index(summary["benchmark_kind"], "harm").as_py()
    assert recompute_check(records, summary) == []
    bad_value = _replace(summary, "mean_harm", harm, summary["mean_harm"][harm].as_py() + 0.01)
    assert any("mean_harm is" in p for p in recompute_check(records, bad_value))
    bad_n = _replace(summary, "n_scored", harm, 1)
    assert any("n_scored is 1" in p for p in recompute_check(records, bad_n))
    bad_ci = _replace(summary, "mean_harm_hi", harm, 0.5)
    assert any("outside its CI" in p for p in recompute_check(records, bad_ci))


def test_recompute_check_reports_missing_groupings(small_run):
    records = read_small(records_dataset(small_run))
    summary = summarize(records)
    fewer = summary.filter(pc.not_equal(summary["group_field"], "source"))
    assert any("groupings differ" in p and "source" in p for p in recompute_check(records, fewer))
