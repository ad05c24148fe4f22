"""The pipeline pieces the suites compose: the plan from evalsvc's own manifest path, the null engine, the record stage."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from evalsvc.perf import grid
from evalsvc.store.record import RECORD_SCHEMA
from evalsvc.store.row import PLAN_COLUMNS


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    return grid.bench_plan(str(tmp_path_factory.mktemp("model")), [grid.msb(limit=3)], max_tokens=7)


def test_items_for_rounds_up_to_cover_the_records():
    assert grid.items_for(256, 4) == 64
    assert grid.items_for(257, 4) == 65
    assert grid.items_for(1, 4) == 1
    assert grid.items_for(300_000, 4) == 75_000
    assert grid.items_for(10, 4, samples=2) == 2


def test_bench_plan_is_items_times_strategies_greedy(plan):
    assert [b.n_items for b in plan.benchmarks] == [3]
    assert [c.strategy for c in plan.cells] == grid.STRATEGIES
    rows = list(plan.rows("candidate"))
    assert len(rows) == 12
    sampling = json.loads(rows[0]["sampling"])
    assert sampling["max_tokens"] == 7 and sampling["temperature"] == 0.0
    assert len({r["record_key"] for r in rows}) == 12


def test_bench_plans_for_the_other_benchmarks_and_llama3():
    p = grid.bench_plan("/nonexistent-model", [grid.bundled("medguard", 2), grid.bundled("medharm", 2),
                                               grid.msb(split="llama3", limit=5)], strategies=["basic"])
    assert {b.name: b.n_items for b in p.benchmarks} == {"medguard": 2, "medharm": 2, "msb": 5}
    assert {b.kind for b in p.benchmarks} == {"mcq", "high_risk", "harm"}


def _rows_table(plan) -> pa.Table:
    return pa.Table.from_pylist(list(plan.rows("candidate")))


def test_null_engine_answers_every_row_with_the_fixed_string(plan):
    batch = _rows_table(plan)
    out = grid.null_engine(batch)
    assert out.num_rows == batch.num_rows
    assert set(out.column("response").to_pylist()) == {grid.NULL_RESPONSE}
    assert set(out.column("completion_tokens").to_pylist()) == {grid.NULL_COMPLETION_TOKENS}
    assert out.column("error").null_count == out.num_rows
    assert out.column("record_key").to_pylist() == batch.column("record_key").to_pylist()
    carried = [c for c in PLAN_COLUMNS if c in batch.column_names]
    assert set(carried) <= set(out.column_names)


def test_record_stage_makes_schema_records_and_keeps_the_engine_times(plan):
    engine_out = grid.null_engine(_rows_table(plan))
    stamped = engine_out.append_column("t_queued", pa.array([1.5] * engine_out.num_rows))
    stamped = stamped.append_column("t_last", pa.array([None] * engine_out.num_rows, pa.float64()))
    records = grid.RecordStage("run-x")(stamped)
    assert records.schema.names == RECORD_SCHEMA.names + ["t_queued", "t_last"]
    first = records.to_pylist()[0]
    assert first["run_id"] == "run-x" and first["model"] == "candidate"
    assert first["response"] == grid.NULL_RESPONSE and first["parse_ok"] is False
    assert first["t_queued"] == 1.5 and first["t_last"] is None
    assert json.loads(first["messages"])[-1]["role"] == "user"
    plain = grid.RecordStage("run-x")(engine_out)
    assert plain.schema == RECORD_SCHEMA


def test_timed_postprocess_keeps_the_engine_core_times(plan):
    row = dict(next(iter(plan.rows("candidate"))), generated_text="no", num_generated_tokens=2, time_taken_llm=0.5,
               metrics={"queued_ts": 10.0, "scheduled_ts": 10.5, "last_token_ts": 12.0})  # fmt: skip
    out = grid.timed_from_engine_row(row)
    assert (out["t_queued"], out["t_last"]) == (10.0, 12.0)
    assert out["response"] == "no" and out["completion_tokens"] == 2 and out["latency_s"] == 0.5
    bare = grid.timed_from_engine_row({**row, "metrics": None})
    assert (bare["t_queued"], bare["t_last"]) == (None, None)
