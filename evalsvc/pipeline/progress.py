"""Live progress of a run: a named Ray actor counts finished records per cell; the driver turns it into status.json.

Counts arrive from the judge stage as records are finished; the Parquet files remain the source of truth.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from evalsvc.plan.grid import Plan
from evalsvc.store.documents import CellStatus, StatusDoc

CELL_COUNTS = ("done", "errors", "parse_failures", "completion_tokens", "generated", "criteria_graded", "criteria_failed")
COUNTS = len(CELL_COUNTS)  # numbers per cell in the progress actor, in this order


class ProgressCounter:
    """Ray actor body: cell_id → COUNTS numbers (CELL_COUNTS), and when the first answers and records arrived.

    Stages add a prefix of the list: finished records add the first three (and rubric criteria), arriving answers
    add tokens and answers generated. A stage names the block it reports (`block`): a block reported again was
    redone (a task retried after its node or actor was lost) and is counted under faults, not twice."""

    def __init__(self):
        self.counts: dict[str, list[int]] = {}
        self.times: dict[str, float] = {}  # event → earliest UNIX time a stage reported it
        self.blocks: set[str] = set()
        self.faulted: dict[str, int] = {}  # fault → how often: blocks_redone, judge_calls_waited

    def add(self, delta: dict[str, list[int]], at: float | None = None, block: str | None = None) -> None:
        if block is not None:
            if block in self.blocks:
                self.fault("blocks_redone")
                return
            self.blocks.add(block)
        for cell, values in delta.items():
            c = self.counts.setdefault(cell, [0] * COUNTS)
            for i, v in enumerate(values[:COUNTS]):
                c[i] += v
        if at is not None:
            self.mark("first_record", at)
            self.times["last_record"] = max(self.times.get("last_record", at), at)

    def mark(self, event: str, at: float) -> None:
        self.times[event] = min(self.times.get(event, at), at)

    def fault(self, name: str, n: int = 1) -> None:
        self.faulted[name] = self.faulted.get(name, 0) + n

    def faults(self) -> dict[str, int]:
        return self.faulted

    def snapshot(self) -> dict[str, list[int]]:
        return self.counts

    def events(self) -> dict[str, float]:
        return self.times


def start_counter(name: str):
    import ray

    from evalsvc.engines.startup import on_driver_node

    return ray.remote(num_cpus=0)(ProgressCounter).options(name=name, **on_driver_node()).remote()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def status_doc(plan: Plan, run_id: str, state: str, counts: dict[str, list[int]], done_before: dict[str, int],
               criteria_before: dict[str, int] | None = None) -> StatusDoc:  # fmt: skip
    cells = []
    for c in plan.cells:
        done, errors, unparsed, tokens, generated, graded, failed = [*counts.get(c.cell_id, []), *[0] * COUNTS][:COUNTS]
        before = done_before.get(c.cell_id, 0)
        rubric = {}
        if c.kind == "rubric":  # grader calls: the heavy part of a rubric cell
            crit_before = (criteria_before or {}).get(c.cell_id, 0)
            rubric = {"criteria_total": c.criteria, "criteria_done": min(c.criteria, graded + crit_before),
                      "criteria_failed": failed}  # fmt: skip
        cells.append(
            CellStatus(
                cell_id=c.cell_id, model=c.model, benchmark=c.benchmark, strategy=c.strategy, guardrail=c.guardrail,
                total=c.generations, done=min(c.generations, done + before), errors=errors, parse_failures=unparsed,
                generated=min(c.generations, max(generated, done) + before), completion_tokens=tokens, **rubric,
            )
        )  # fmt: skip
    return StatusDoc(run_id=run_id, state=state, updated=now(), done=sum(c.done for c in cells),
                     total=sum(c.total for c in cells), cells=cells)  # fmt: skip


class StatusPoller:
    """Background thread: poll the counter every `interval` seconds and hand the snapshot to `on_update`."""

    def __init__(self, counter, on_update: Callable[[dict], None], interval: float = 2.0):
        self.counter, self.on_update, self.interval = counter, on_update, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()

    def poll(self) -> None:
        import ray

        try:
            self.on_update(ray.get(self.counter.snapshot.remote(), timeout=10))
        except Exception:  # progress is best effort; the records are the truth
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
