"""Suite `memory`: driver peak RSS and wall time as the grid grows (MSB llama3 requests × 4 strategies, null engine).

The driver ships items, never rows, so its memory must stay flat while records grow 300-fold.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evalsvc.perf import grid
from evalsvc.perf.report import BenchResult, environment, ratio
from evalsvc.perf.rss import PeakRSS

DEFAULT_SIZES = (1_000, 10_000, 100_000, 300_000)
MIB = 1 << 20


def run(sizes: tuple[int, ...] = DEFAULT_SIZES, out: Path = Path(".evalsvc/bench")) -> BenchResult:
    from evalsvc.engines.prepare import prepare
    from evalsvc.pipeline.cluster import connect

    model_dir = str(prepare("tiny"))  # named in the records only
    result = BenchResult("memory", {"sizes": list(sizes), "sink": "local Parquet folder"}, env=environment())
    connect(None)
    work = out / "memory-work"
    for size in sorted(sizes):
        shutil.rmtree(work, ignore_errors=True)
        with PeakRSS() as rss:
            plan = grid.bench_plan(model_dir, [grid.msb(split="llama3", limit=grid.items_for(size, 4))])
            wall = grid.run_pipeline(plan, grid.null_stage(), str(work), batch_size=256)
        n = sum(c.generations for c in plan.cells)
        result.add(records_asked=size, records=n, wall_s=wall, rec_s=n / wall,
                   rss_start_mib=rss.start / MIB, rss_peak_mib=rss.peak / MIB,
                   rss_growth_mib=(rss.peak - rss.start) / MIB)  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    if len(result.rows) >= 2:
        lo, hi = result.rows[0], result.rows[-1]
        result.ratios = {
            "peak RSS, largest ÷ smallest": ratio(hi["rss_peak_mib"], lo["rss_peak_mib"]),
            "records, largest ÷ smallest": ratio(hi["records"], lo["records"]),
            "records/s, largest ÷ smallest": ratio(hi["rec_s"], lo["rec_s"]),
        }
    result.notes.append("the llama3 split has 74,374 requests: 300k asked gives 74,374 × 4 = 297,496 records")
    return result
