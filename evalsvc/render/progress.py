"""A run's live progress for the terminal: a per-cell table (rich) or one plain line, with tokens/s and an ETA.

Pure over status.json documents and the times they arrived; `Rates` keeps the short history the speeds need.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

AXES = (("model", "model", "models"), ("benchmark", "benchmark", "benchmarks"), ("strategy", "strategy", "strategies"),
        ("guardrail", "guardrail arm", "guardrail arms"))  # fmt: skip
WINDOW_S = 30.0  # speeds are measured over the last half minute: the current pace, not the start-up's


@dataclass
class Rates:
    """Records/s and generation tokens/s (whole run and per cell) over a sliding window of status documents."""

    window_s: float = WINDOW_S
    history: deque = field(default_factory=deque)  # (time, {cell_id: (done, tokens)})

    def update(self, doc: dict, t: float) -> None:
        cells = {c["cell_id"]: (c.get("done", 0), c.get("completion_tokens", 0)) for c in doc.get("cells", [])}
        self.history.append((t, cells))
        while len(self.history) > 2 and t - self.history[1][0] >= self.window_s:
            self.history.popleft()

    def _delta(self, cell: str | None) -> tuple[float, int, int] | None:
        if len(self.history) < 2:
            return None
        (t0, first), (t1, last) = self.history[0], self.history[-1]
        if t1 <= t0:
            return None
        keys = [cell] if cell is not None else list(last)
        done = sum(last.get(k, (0, 0))[0] - first.get(k, (0, 0))[0] for k in keys)
        tokens = sum(last.get(k, (0, 0))[1] - first.get(k, (0, 0))[1] for k in keys)
        return t1 - t0, done, tokens

    def records_per_s(self, cell: str | None = None) -> float | None:
        d = self._delta(cell)
        return d[1] / d[0] if d and d[1] > 0 else None

    def tokens_per_s(self, cell: str | None = None) -> float | None:
        d = self._delta(cell)
        return d[2] / d[0] if d and d[2] > 0 else None

    def eta_s(self, doc: dict) -> float | None:
        """Seconds left at the window's pace; None before records flow (start-up) or once all are done."""
        left = doc.get("total", 0) - doc.get("done", 0)
        speed = self.records_per_s()
        return left / speed if speed and left > 0 else None


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def speed(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def plan_line(doc: dict) -> str:
    """'plan: 3 cells (1 model × 1 benchmark × 3 strategies), 54 records' from the first status document."""
    cells = doc.get("cells", [])
    axes = []
    for key, one, many in AXES:
        n = len({c.get(key) for c in cells if c.get(key) is not None})
        if n:
            axes.append(f"{n} {one if n == 1 else many}")
    n = len(cells)
    return f"plan: {n} {'cell' if n == 1 else 'cells'} ({' × '.join(axes)}), {doc.get('total', 0):,} records"


def _counts(doc: dict) -> tuple[int, int, int]:
    cells = doc.get("cells", [])
    return (sum(c.get("errors", 0) for c in cells), sum(c.get("parse_failures", 0) for c in cells),
            sum(max(c.get("generated", 0), c.get("done", 0)) for c in cells))  # fmt: skip


def progress_line(doc: dict, rates: Rates, elapsed_s: float) -> str:
    """One plain line for logs and CI: answers generated, records done, errors, parse failures, tokens/s, ETA."""
    errors, unparsed, generated = _counts(doc)
    total = doc.get("total", 0)
    return (
        f"[{duration(elapsed_s)}] {doc.get('state', 'starting')}: {generated:,}/{total:,} generated · "
        f"{doc.get('done', 0):,}/{total:,} records · {errors} errors · {unparsed} unparsed · "
        f"{speed(rates.tokens_per_s())} tok/s · ETA {duration(rates.eta_s(doc))}"
    )


def progress_view(doc: dict, rates: Rates, elapsed_s: float) -> Group:
    """The live view: a heading line (totals, speed, ETA) as wide as the terminal, then the per-cell table, one row
    per cell (answers generated, records done). A table title would wrap at the table's own width."""
    errors, unparsed, generated = _counts(doc)
    total = doc.get("total", 0)
    title = (
        f"run {doc.get('run_id', '')} — {doc.get('state', 'starting')} {duration(elapsed_s)}: "
        f"{generated:,}/{total:,} generated · {doc.get('done', 0):,}/{total:,} records · "
        f"{speed(rates.tokens_per_s())} tok/s · ETA {duration(rates.eta_s(doc))}"
    )
    t = Table()
    for col in ("model", "benchmark", "strategy"):
        t.add_column(col)
    rubric = any(c.get("criteria_total") is not None for c in doc.get("cells", []))  # grader calls per criterion
    for col in ("generated", "records", "errors", "unparsed", "tok/s", *(["criteria"] if rubric else [])):
        t.add_column(col, justify="right")
    for c in doc.get("cells", []):
        model = (c.get("model") or "") + (f" [{c['guardrail']}]" if c.get("guardrail") else "")
        crit = [_criteria(c)] if rubric else []
        t.add_row(
            model, c["benchmark"], c.get("strategy") or "", f"{max(c.get('generated', 0), c['done'])}/{c['total']}",
            f"{c['done']}/{c['total']}", _flag(c.get("errors", 0)), _flag(c.get("parse_failures", 0)),
            speed(rates.tokens_per_s(c["cell_id"])), *crit,
        )  # fmt: skip
    if errors or unparsed:
        t.caption = f"{errors} errors, {unparsed} unparsed judge answers so far (records keep them; see the summary)"
    return Group(Text(title), t)


def _criteria(c: dict) -> str:
    if c.get("criteria_total") is None:
        return ""
    return f"{c['criteria_done']}/{c['criteria_total']}" + (f" ({c['criteria_failed']} failed)" if c["criteria_failed"] else "")


def _flag(n: int) -> str:
    return f"[yellow]{n}[/yellow]" if n else "0"


class ProgressView:
    """Shows status documents as they come: a live table on a terminal, else a plain line every `every_s` seconds
    (and at each change of state). The plan line comes first. Safe to call from the status poller's thread."""

    def __init__(self, console: Console, live: bool, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.console, self.every_s, self.clock = console, every_s, clock
        self.rates = Rates()
        self.started = clock()
        self._live = Live(console=console, refresh_per_second=2, redirect_stdout=False, redirect_stderr=False,
                          auto_refresh=True) if live else None  # fmt: skip
        self._lock = threading.Lock()
        self._planned = False
        self._last_line: tuple[float, str] | None = None  # (when, state) of the last plain line

    def __enter__(self) -> ProgressView:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()

    def update(self, doc: dict) -> None:
        with self._lock:
            now = self.clock()
            self.rates.update(doc, now)
            if not self._planned and doc.get("cells"):
                self.console.print(plan_line(doc))
                self._planned = True
            elapsed = now - self.started
            if self._live is not None:
                self._live.update(progress_view(doc, self.rates, elapsed))
                return
            state = doc.get("state", "")
            last = self._last_line
            if last is None or now - last[0] >= self.every_s or state != last[1]:
                self.console.print(progress_line(doc, self.rates, elapsed), highlight=False)
                self._last_line = (now, state)


def replica_lines(status: dict) -> list[str]:
    """One line per node: the model replicas a live run has there (status.json `replicas`)."""
    by_node: dict[tuple[str, str], list[str]] = {}
    for r in status.get("replicas") or []:
        what = "engine" if r["role"] == "engine" else r.get("app") or "serve"
        state = "" if r["state"] == "ALIVE" else f" {r['state'].lower()}"
        restarts = f" (restarted {r['restarts']}×)" if r.get("restarts") else ""
        by_node.setdefault((r.get("ip") or "?", r.get("node_id", "")[:8]), []).append(f"{what}{state}{restarts}")
    return [f"{ip} node {node}: {', '.join(sorted(w))}" for (ip, node), w in sorted(by_node.items())]


def retries_line(status: dict) -> str | None:
    """What a run redid after faults (status.json `retries`), e.g. "engine restarts 1, blocks redone 2"."""
    retries = status.get("retries") or {}
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in retries.items()) or None
