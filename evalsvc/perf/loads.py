"""Suite `loads`: 1 model × 3 benchmarks × 4 strategies model-major (one engine load per replica) vs one engine per cell.

Engine constructions are counted from the GCS actor table (actors of class vLLMEngineStageUDF), not assumed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evalsvc.perf import grid
from evalsvc.perf.report import BenchResult, environment, ratio

NO_MP = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def benchmarks(items: int) -> list[dict]:
    return [grid.msb(limit=items), grid.bundled("medguard", items), grid.bundled("medharm", items)]


def run(model: str = "tiny", items: int = 8, max_tokens: int = 16, naive_cells: int | None = None,
        no_mp: bool = False, out: Path = Path(".evalsvc/bench")) -> BenchResult:  # fmt: skip
    from evalsvc.engines.prepare import prepare
    from evalsvc.pipeline.cluster import connect

    model_dir = str(prepare(model))
    kw = {"max_tokens": max_tokens, "engine_args": {"max_model_len": 2048}}
    plan = grid.bench_plan(model_dir, benchmarks(items), **kw)
    cells = [(b, s) for b in benchmarks(items) for s in grid.STRATEGIES]
    naive = cells[: naive_cells or len(cells)]
    result = BenchResult(
        "loads",
        {"model": model, "items_per_benchmark": items, "cells": len(cells), "naive_cells_run": len(naive),
         "max_tokens": max_tokens, "no_mp": no_mp},
        env=environment(),
    )  # fmt: skip
    env = dict(NO_MP) if no_mp else {}
    connect(None)
    work = out / "loads-work"
    shutil.rmtree(work, ignore_errors=True)

    before = grid.engine_actors()
    wall = grid.run_pipeline(plan, grid.vllm_stage(grid.spec_for(plan, extra_env=env)), str(work / "model-major"))
    ours = result.add(system="evalsvc (model-major)", engine_loads=len(grid.engine_actors() - before),
                      wall_s=wall, records=sum(c.generations for c in plan.cells))  # fmt: skip

    before, total, records = grid.engine_actors(), 0.0, 0
    for i, (bench, strategy) in enumerate(naive):
        cell_plan = grid.bench_plan(model_dir, [bench], strategies=[strategy], **kw)
        stage = grid.vllm_stage(grid.spec_for(cell_plan, extra_env=env))
        total += grid.run_pipeline(cell_plan, stage, str(work / f"cell-{i}"))
        records += sum(c.generations for c in cell_plan.cells)
    loads = len(grid.engine_actors() - before)
    naive_row = result.add(system="naive (engine per cell)", engine_loads=loads, wall_s=total, records=records)
    if len(naive) < len(cells):  # scale the measured cells up to the whole grid
        naive_row["note"] = f"measured {len(naive)} of {len(cells)} cells"
        result.add(system="naive, scaled to all cells", engine_loads=None,
                   wall_s=total * len(cells) / len(naive), records=None, note="extrapolated")  # fmt: skip
    full_naive = result.rows[-1]["wall_s"]
    result.ratios = {
        "engine loads per replica, model-major (must be 1)": float(ours["engine_loads"]),
        "naive wall ÷ model-major wall": ratio(full_naive, ours["wall_s"]),
        "naive engine loads ÷ model-major engine loads": ratio(loads * len(cells) / len(naive), ours["engine_loads"]),
    }
    shutil.rmtree(work, ignore_errors=True)
    return result
