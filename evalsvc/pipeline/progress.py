"""Live progress of a run: a named Ray actor counts finished records per cell; the driver turns it into status.json.

Counts arrive from the judge stage as records are finished; the Parquet files remain the source of truth.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Callable

from evalsvc.plan.grid import Plan
from evalsvc.store.documents import CellStatus, StatusDoc


class ProgressCounter:
    """Ray actor body: cell_id → [done, errors, parse_failures]."""

    def __init__(self):
        self.counts: dict[str, list[int]] = {}

    def add(self, delta: dict[str, list[int]]) -> None:
        for cell, (done, errors, unparsed) in delta.items():
            c = self.counts.setdefault(cell, [0, 0, 0])
            c[0] += done
            c[1] += errors
            c[2] += unparsed

    def snapshot(self) -> dict[str, list[int]]:
        return self.counts


def start_counter(name: str):
    import ray

    return ray.remote(num_cpus=0)(ProgressCounter).options(name=name).remote()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def status_doc(plan: Plan, run_id: str, state: str, counts: dict[str, list[int]], done_before: dict[str, int]) -> StatusDoc:
    cells = []
    for c in plan.cells:
        done, errors, unparsed = counts.get(c.cell_id, [0, 0, 0])
        cells.append(
            CellStatus(
                cell_id=c.cell_id, model=c.model, benchmark=c.benchmark, strategy=c.strategy, guardrail=c.guardrail,
                total=c.generations, done=min(c.generations, done + done_before.get(c.cell_id, 0)),
                errors=errors, parse_failures=unparsed,
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
