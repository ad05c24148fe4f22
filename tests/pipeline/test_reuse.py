"""Reuse bookkeeping without Ray: what a rubric record costs in judge calls, when a cached rubric judgement counts,
the per-criterion progress a run reports (plan_reuse, CacheJoin's criteria check, status.json), and guard-only
mode leaving rubric benchmarks out with a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.progress import ProgressCounter, status_doc
from evalsvc.pipeline.reuse import _same_criteria, plan_reuse
from evalsvc.plan.grid import build_plan
from evalsvc.store.index import KeyIndex

SAMPLE = Path(__file__).resolve().parents[2] / "evalsvc" / "benchmarks" / "samples" / "rubric_sample.jsonl"
SIG = ("http://127.0.0.1:9/v1#judge", "rubric-grader", "1.0.0")


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    m = validate_manifest({
        "name": "rub", "models": [{"name": "m", "source": "evalsvc://tiny"}],
        "benchmarks": [{"name": "hb", "path": str(SAMPLE), "format": "rubric"}, {"name": "g", "dataset": "medguard"}],
        "strategies": ["basic", "safety"], "judge": {"url": "http://127.0.0.1:9/v1", "model_name": "judge"},
        "output": {"uri": str(tmp_path_factory.mktemp("out"))},
    })  # fmt: skip
    return build_plan(m)


def rubric_rows(plan) -> list[dict]:
    return [r for r in plan.rows("m") if r["benchmark_kind"] == "rubric"]


def test_nothing_to_reuse_means_every_criterion_is_a_judge_call(plan):
    out = plan_reuse(plan, KeyIndex(), KeyIndex(), {"rubric": SIG})
    assert out.judge_calls == plan.totals()["criteria"] == 2 * 35


def test_a_cached_judgement_saves_all_its_criteria(plan):
    first, second = rubric_rows(plan)[:2]
    cache = KeyIndex(present={first["record_key"], second["record_key"]},
                     generated={first["record_key"], second["record_key"]},
                     judged={first["record_key"]: SIG, second["record_key"]: ("other judge", *SIG[1:])})  # fmt: skip
    out = plan_reuse(plan, KeyIndex(), cache, {"rubric": SIG})
    assert (out.reused_generations, out.reused_judgements) == (2, 1)
    assert out.judge_calls == 2 * 35 - first["n_criteria"]


def test_resumed_records_count_their_criteria_as_done(plan):
    row = rubric_rows(plan)[3]
    done = KeyIndex(present={row["record_key"]}, generated={row["record_key"]}, judged={row["record_key"]: SIG})
    out = plan_reuse(plan, done, KeyIndex(), {"rubric": SIG})
    assert out.skipped_by_cell == {row["cell_id"]: 1} and out.skipped_criteria == {row["cell_id"]: row["n_criteria"]}
    doc = status_doc(plan, "r", "running", {}, out.skipped_by_cell, out.skipped_criteria).to_json()
    cell = next(c for c in doc["cells"] if c["cell_id"] == row["cell_id"])
    assert (cell["done"], cell["criteria_done"], cell["criteria_total"]) == (1, row["n_criteria"], 35)


def test_a_cached_rubric_judgement_needs_the_same_criteria(plan):
    row = rubric_rows(plan)[0]
    ids = [c["criterion_id"] for c in json.loads(row["rubric_json"])["criteria"]]
    assert _same_criteria(row, {"criteria": [{"criterion_id": i} for i in ids]})
    assert not _same_criteria(row, {"criteria": [{"criterion_id": i} for i in ids[:-1]]})  # a criterion was added
    assert not _same_criteria(row, {"criteria": None})
    assert _same_criteria({"benchmark_kind": "harm"}, {})


def test_progress_counts_criteria_per_rubric_cell(plan):
    counter = ProgressCounter()
    cell = next(c for c in plan.cells if c.kind == "rubric")
    counter.add({cell.cell_id: [3, 0, 1, 0, 0, 14, 2]})  # the progress actor's CELL_COUNTS
    counter.add({cell.cell_id: [1, 1, 0, 0, 0, 4, 0]})
    mcq = next(c for c in plan.cells if c.kind == "mcq")
    counter.add({mcq.cell_id: [5, 0, 0]})  # older callers send three counts
    doc = status_doc(plan, "r", "running", counter.snapshot(), {}).to_json()
    by = {c["cell_id"]: c for c in doc["cells"]}
    assert {k: by[cell.cell_id][k] for k in ("done", "errors", "parse_failures", "criteria_done", "criteria_failed",
                                           "criteria_total")} == {"done": 4, "errors": 1, "parse_failures": 1,
                                                                  "criteria_done": 18, "criteria_failed": 2,
                                                                  "criteria_total": 35}  # fmt: skip
    assert by[mcq.cell_id]["done"] == 5 and "criteria_total" not in by[mcq.cell_id]


def test_guard_only_mode_leaves_rubric_benchmarks_out_with_a_note(plan):
    from evalsvc.pipeline.guard_only import item_rows

    rows, notes = item_rows(plan)
    assert rows == [] and len(notes) == 2  # the rubric sample and the MCQ sample: neither has a safe/unsafe label
    assert "'hb' is a rubric benchmark" in notes[0] and "guard-only mode skips it" in notes[0]


def test_a_record_whose_judge_failed_gives_its_answer_and_never_its_judgement(plan, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalsvc.pipeline.reuse import CacheJoin
    from evalsvc.store.record import RECORD_SCHEMA

    row = rubric_rows(plan)[0]
    rec = {name: None for name in RECORD_SCHEMA.names}
    rec.update(record_key=row["record_key"], response="the kept answer", completion_tokens=7, parse_ok=False,
               judge_model=SIG[0], rubric_id=SIG[1], rubric_version=SIG[2], judge_raw="error",
               error="judge: ActorDiedError: the replica's node was lost")  # fmt: skip
    folder = tmp_path / "records" / "model=m" / "benchmark=hb" / "strategy=basic"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([rec], schema=RECORD_SCHEMA).drop_columns(["model", "benchmark", "strategy"]),
                   folder / "part-0.parquet")  # fmt: skip
    out = CacheJoin([str(tmp_path / "records")], None, {"rubric": SIG})(pa.Table.from_pylist([row])).to_pylist()
    (joined,) = out
    assert joined["response"] == "the kept answer" and joined["completion_tokens"] == 7
    assert joined["error"] is None and joined["reused_judgement"] is False  # judged again, not copied
    assert joined["cached_judge_raw"] is None
