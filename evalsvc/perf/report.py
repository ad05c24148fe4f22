"""What every benchmark suite hands back: measured rows, the ratios between them, and the machine it ran on.

One `BenchResult` becomes a rich table on the terminal and `<suite>.json` under --out, from the same numbers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass
class BenchResult:
    suite: str
    params: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per measured configuration
    ratios: dict[str, float | None] = field(default_factory=dict)  # the headline comparisons
    notes: list[str] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)

    def add(self, **row: Any) -> dict[str, Any]:
        """Append a measured row, stamped with the load average at the moment it was measured."""
        row.setdefault("load1", load_average()[0])
        self.rows.append(row)
        return row


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either side is missing or b is zero (a failed or empty measurement)."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def load_average() -> tuple[float, float, float]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]
    except OSError:  # not on every platform
        return (float("nan"),) * 3  # type: ignore[return-value]


def environment() -> dict[str, Any]:
    """The machine and versions a result was measured on (the numbers mean little without them)."""
    env: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_avg_start": load_average(),
    }
    for mod in ("ray", "vllm", "torch", "pyarrow"):
        try:
            env[mod] = str(__import__(mod).__version__)
        except Exception:  # an optional engine that is not installed
            env[mod] = None
    return env


def finish(result: BenchResult) -> BenchResult:
    result.env["load_avg_end"] = load_average()
    return result


def write_json(result: BenchResult, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{result.suite}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str) + "\n", encoding="utf-8")
    return path


def fmt(value: Any) -> str:
    """Numbers for people: 3 significant digits for small floats, thousands separators for big ones."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """Union of the rows' keys in first-seen order (rows of one suite may measure different things)."""
    seen: dict[str, None] = {}
    for r in rows:
        for k in r:
            seen.setdefault(k, None)
    return list(seen)


def render(result: BenchResult):
    """A rich renderable: the rows table, then the headline ratios and notes under it."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"evalsvc bench {result.suite}", title_justify="left")
    cols = columns(result.rows)
    for c in cols:
        table.add_column(c, justify="left" if c in ("config", "system", "what", "note") else "right")
    for r in result.rows:
        table.add_row(*(fmt(r.get(c)) for c in cols))
    parts: list[Any] = [table]
    if result.ratios:
        ratios = Table(title="ratios", title_justify="left", show_header=False)
        ratios.add_column("ratio")
        ratios.add_column("value", justify="right")
        for k, v in result.ratios.items():
            ratios.add_row(k, fmt(v))
        parts.append(ratios)
    for n in result.notes:
        parts.append(Text(f"• {n}"))
    load = result.env.get("load_avg_start"), result.env.get("load_avg_end")
    parts.append(Text(f"load average (1/5/15 min) start {load[0]} end {load[1]}; cpus {result.env.get('host_cpus')}"))
    return Group(*parts)


class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.s` — wall seconds of a block (monotonic clock)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.monotonic()
        self.s = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.s = time.monotonic() - self.start
