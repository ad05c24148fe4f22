"""The live progress display: speeds over a sliding window, the ETA, the plan line, plain lines on a schedule."""

from __future__ import annotations

import io

from rich.console import Console

from evalsvc.render.progress import ProgressView, Rates, duration, plan_line, progress_line, progress_view


def doc(done: list[int], tokens: list[int], state: str = "running", errors: int = 0, unparsed: int = 0) -> dict:
    cells = [
        {"cell_id": f"c{i}", "model": "m", "benchmark": "msb", "strategy": s, "total": 10, "done": d,
         "completion_tokens": t, "errors": errors if i == 0 else 0, "parse_failures": unparsed if i == 0 else 0}
        for i, (s, d, t) in enumerate(zip(["basic", "cot"], done, tokens))
    ]  # fmt: skip
    return {"run_id": "r1", "state": state, "done": sum(done), "total": 20, "cells": cells}


def test_rates_and_eta_come_from_the_window_not_from_the_start():
    r = Rates(window_s=30)
    r.update(doc([0, 0], [0, 0]), t=0)
    assert r.tokens_per_s() is None and r.eta_s(doc([0, 0], [0, 0])) is None  # start-up: nothing to measure yet
    r.update(doc([2, 0], [200, 0]), t=100)  # the first records after a long start-up
    r.update(doc([6, 0], [600, 0]), t=110)
    r.update(doc([10, 0], [1000, 0]), t=120)
    r.update(doc([10, 4], [1000, 400]), t=140)
    # the window kept the last 30 s (t=110..140): 8 records and 800 tokens in 30 s
    assert abs(r.tokens_per_s() - 800 / 30) < 1e-9
    assert abs(r.tokens_per_s("c1") - 400 / 30) < 1e-9
    last = doc([10, 4], [1000, 400])
    assert abs(r.eta_s(last) - 6 / (8 / 30)) < 1e-9
    assert r.eta_s(doc([10, 10], [1000, 1000])) is None  # done: no ETA


def test_resumed_records_count_as_done_but_not_as_speed():
    r = Rates()
    r.update(doc([10, 0], [0, 0]), t=0)  # resumed: already done when the run starts
    r.update(doc([10, 0], [0, 0]), t=5)
    assert r.records_per_s() is None and r.tokens_per_s() is None


def test_plan_line_counts_the_axes():
    assert plan_line(doc([0, 0], [0, 0])) == "plan: 2 cells (1 model × 1 benchmark × 2 strategies), 20 records"


def test_plain_line_has_counts_speed_and_eta():
    r = Rates()
    r.update(doc([0, 0], [0, 0]), t=0)
    r.update(doc([5, 5], [500, 500], errors=1, unparsed=2), t=10)
    line = progress_line(doc([5, 5], [500, 500], errors=1, unparsed=2), r, elapsed_s=75)
    assert line == "[1:15] running: 10/20 generated · 10/20 records · 1 errors · 2 unparsed · 100 tok/s · ETA 0:10"


def test_table_has_one_row_per_cell_and_flags_problems():
    r = Rates()
    console = Console(file=io.StringIO(), width=160, color_system=None)
    d = doc([3, 1], [30, 10], errors=1)
    d["cells"][0]["generated"] = 8  # answers waiting for the judge
    d["run_id"] = "quickstart-20261207-013558-2149"  # a heading wider than the table
    console.print(progress_view(d, r, elapsed_s=3))
    text = console.file.getvalue()
    assert "9/20 generated · 4/20 records" in text  # cell c1 reports no arrivals yet: its records count
    assert "8/10" in text and "3/10" in text and "1/10" in text and "basic" in text and "cot" in text
    assert "1 errors, 0 unparsed judge answers so far" in text
    heading = text.splitlines()[0].rstrip()  # as wide as the terminal, not wrapped at the narrower table's width
    assert heading.startswith("run quickstart-20261207-013558-2149 — running") and heading.endswith("ETA —"), text


def test_view_off_a_terminal_prints_the_plan_once_and_lines_on_a_schedule():
    now = [0.0]
    out = io.StringIO()
    view = ProgressView(Console(file=out, width=200, color_system=None), live=False, every_s=10, clock=lambda: now[0])
    with view:
        for t, state in [(0, "running"), (2, "running"), (11, "running"), (12, "succeeded")]:
            now[0] = t
            view.update(doc([t, 0], [0, 0], state=state))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("plan: 2 cells")
    assert [ln.split("]")[0] for ln in lines[1:]] == ["[0:00", "[0:11", "[0:12"]  # t=2 skipped; a new state prints
    assert "succeeded" in lines[-1]


def test_duration():
    assert (duration(None), duration(5), duration(65), duration(3725)) == ("—", "0:05", "1:05", "1:02:05")


def test_replicas_are_listed_per_node_with_restarts_and_the_run_says_what_it_redid():
    from evalsvc.render.progress import replica_lines, retries_line

    status = {
        "replicas": [
            {"role": "engine", "app": None, "node_id": "aaaa1111bbbb", "ip": "10.0.0.2", "state": "ALIVE", "restarts": 0},
            {"role": "engine", "app": None, "node_id": "cccc2222dddd", "ip": "10.0.0.3", "state": "RESTARTING",
             "restarts": 1},
            {"role": "serve", "app": "judge_app", "node_id": "aaaa1111bbbb", "ip": "10.0.0.2", "state": "ALIVE",
             "restarts": 0},
        ],
        "retries": {"blocks_redone": 2, "engine_restarts": 1},
    }  # fmt: skip
    assert replica_lines(status) == [
        "10.0.0.2 node aaaa1111: engine, judge_app",
        "10.0.0.3 node cccc2222: engine restarting (restarted 1×)",
    ]
    assert retries_line(status) == "blocks redone 2, engine restarts 1"
    assert replica_lines({}) == [] and retries_line({}) is None
