"""Progress counting without Ray: the counter's arithmetic and timeline events, and the status document it feeds."""

from __future__ import annotations

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.progress import ProgressCounter, status_doc
from evalsvc.plan.grid import build_plan


def test_counter_adds_records_and_arrivals_and_keeps_the_earliest_and_latest_times():
    c = ProgressCounter()
    c.add({"a": [0, 0, 0, 120, 8]})  # 8 answers arrived with 120 tokens
    c.add({"a": [5, 1, 2]}, at=50.0)  # 5 records finished
    c.add({"a": [3, 0, 0], "b": [1, 0, 1]}, at=40.0)
    c.mark("first_generation", 30.0)
    c.mark("first_generation", 35.0)
    assert c.snapshot() == {"a": [8, 1, 2, 120, 8, 0, 0], "b": [1, 0, 1, 0, 0, 0, 0]}  # CELL_COUNTS, 7 a cell
    assert c.events() == {"first_record": 40.0, "last_record": 50.0, "first_generation": 30.0}


def test_status_counts_generated_answers_resumed_records_and_tokens():
    m = validate_manifest({
        "name": "p", "models": [{"name": "m", "source": "/nonexistent/model"}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"sample": 1, "per": "principle"}}],
        "strategies": ["basic", "cot"], "judge": {"url": "http://127.0.0.1:9/v1", "model_name": "j"},
        "output": {"uri": "/tmp/unused"},
    })  # fmt: skip
    plan = build_plan(m)
    basic, cot = (c.cell_id for c in plan.cells)
    doc = status_doc(plan, "r", "running", {basic: [2, 0, 1, 300, 6]}, {cot: 4})
    cells = {c.cell_id: c for c in doc.cells}
    assert (cells[basic].generated, cells[basic].done, cells[basic].completion_tokens) == (6, 2, 300)
    assert (cells[cot].generated, cells[cot].done) == (4, 4)  # resumed records count as generated and done
    assert doc.done == 6 and doc.total == 18
    old = status_doc(plan, "r", "running", {basic: [9, 0, 0]}, {})  # a stage that reports records only
    assert next(c for c in old.cells if c.cell_id == basic).generated == 9
