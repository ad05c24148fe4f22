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


def test_guard_only_status_reads_the_counters_padded_cells():
    from types import SimpleNamespace

    from evalsvc.pipeline.guard_only import _status_of
    from evalsvc.store.layout import RunLayout

    c = ProgressCounter()
    c.add({"tg/mh": [3, 1, 1]})  # the guard-only stage adds done, errors, parse failures; the counter pads to 7
    rows = [{"benchmark": "mh"}] * 4 + [{"benchmark": "msb"}] * 2
    status = _status_of(RunLayout("/tmp/unused", "r"), (SimpleNamespace(name="tg"),), rows)(c.snapshot(), "running")
    cells = {s.cell_id: (s.done, s.total, s.errors, s.parse_failures) for s in status.cells}
    assert cells == {"tg/mh": (3, 4, 1, 1), "tg/msb": (0, 2, 0, 0)}
    assert (status.mode, status.done, status.total) == ("guard_only", 3, 6)


def test_a_block_reported_again_is_counted_once_and_as_redone():
    c = ProgressCounter()
    c.add({"a": [4, 1, 0]}, at=10.0, block="judged:b1")
    c.add({"a": [4, 1, 0]}, at=20.0, block="judged:b1")  # the same block, from a task retried after a lost node
    c.add({"a": [2, 0, 0]}, at=30.0, block="judged:b2")
    c.fault("judge_calls_waited", 3)
    assert c.snapshot()["a"][:3] == [6, 1, 0]
    assert c.faults() == {"blocks_redone": 1, "judge_calls_waited": 3}


def test_a_retried_block_has_the_same_id_and_a_different_block_another():
    from evalsvc.judge.stage import block_id

    rows = [{"record_key": k, "guardrail": None} for k in ("k1", "k2")]
    assert block_id(rows) == block_id(list(reversed(rows)))
    assert block_id(rows) != block_id(rows[:1])
    assert block_id(rows) != block_id([{**r, "guardrail": "tg"} for r in rows])


def test_a_live_status_rereads_replica_nodes_only_every_few_seconds_once_there_are_some(monkeypatch):
    from evalsvc.pipeline import lifecycle

    reads: list[int] = []
    found: list[list[dict] | None] = [None, [{"role": "engine"}], [{"role": "engine"}, {"role": "serve"}]]
    def read():
        reads.append(1)
        return found[min(len(reads) - 1, 2)]

    monkeypatch.setattr(lifecycle, "_replicas", read)
    run = lifecycle.Run(None, None, None)
    assert run.where_replicas(every_s=60) is None  # nothing placed yet: read again next time
    assert run.where_replicas(every_s=60) == [{"role": "engine"}]
    assert run.where_replicas(every_s=60) == [{"role": "engine"}] and len(reads) == 2  # within 60 s: no read
    assert len(run.where_replicas(every_s=0)) == 2 and len(reads) == 3
