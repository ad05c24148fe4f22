"""Suite `efficiency`: the same generations through evalsvc's pipeline (judge left out) and through plain vllm.LLM.

Tokens/s both ways, end to end and excluding start-up, for each setting of the Ray Data levers asked for. With
`repeats` the baseline and every setting run in turn, repeat after repeat, each ratio taken against the baseline of
its own repeat (a change in the machine's load hits both sides alike); the headline is each ratio's median and range.
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.dataset as pads

from evalsvc.engines.vllm import CPU_ENV, engine_kwargs
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Resources
from evalsvc.perf import grid
from evalsvc.perf.direct import direct_job, run_direct
from evalsvc.perf.report import BenchResult, Stopwatch, ratio

NO_MP = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
DEFAULT_CONFIGS = ("16x8", "64x8", "64x16p256")
CONFIG_RE = re.compile(r"^(\d+)x(\d+)(?:p(-?\d+))?(\+nomp)?$")


@dataclass(frozen=True)
class Levers:
    """One setting of the Ray Data levers: rows per batch, batches in flight per replica, engine queue bound."""

    batch_size: int
    max_concurrent_batches: int
    max_pending_requests: int | None = None
    no_mp: bool = False  # VLLM_ENABLE_V1_MULTIPROCESSING=0 (engine core in the actor's own process)

    @property
    def label(self) -> str:
        s = f"{self.batch_size}x{self.max_concurrent_batches}"
        s += f"p{self.max_pending_requests}" if self.max_pending_requests is not None else ""
        return s + ("+nomp" if self.no_mp else "")


def parse_levers(text: str) -> Levers:
    """'BSxMCB[pPENDING][+nomp]', e.g. '64x8' (the product default), '64x16p256', '64x8+nomp'."""
    m = CONFIG_RE.match(text.strip())
    if not m:
        raise UserError(f"--config {text!r}: write BATCHxCONCURRENT[pPENDING][+nomp], e.g. 64x8 or 64x16p256+nomp")
    bs, mcb, pending, nomp = m.groups()
    if int(bs) < 1 or int(mcb) < 1:
        raise UserError(f"--config {text!r}: batch size and concurrent batches must be at least 1")
    return Levers(int(bs), int(mcb), None if pending is None else int(pending), bool(nomp))


def steady_numbers(t0: float, queued: list[float | None], last: list[float | None], tokens: int) -> dict:
    """Split a run at the moment its engine took the first request: start-up before, generation after.

    `queued`/`last` are the engine core's per-request queue and last-token times (CLOCK_MONOTONIC, shared by
    all processes of the machine); `t0` is the monotonic start of the run on the same clock."""
    q = [x for x in queued if x]
    e = [x for x in last if x]
    if not q or not e:
        return {"startup_s": None, "steady_s": None, "steady_tok_s": None}
    steady = max(max(e) - min(q), 1e-9)
    return {"startup_s": min(q) - t0, "steady_s": steady, "steady_tok_s": tokens / steady}


def run(model: str = "tiny", n: int = 256, max_tokens: int = 32, configs: tuple[str, ...] = DEFAULT_CONFIGS,
        repeats: int = 1, out: Path = Path(".evalsvc/bench"), direct_no_mp: bool = True) -> BenchResult:  # fmt: skip
    from evalsvc.engines.prepare import prepare
    from evalsvc.perf.report import environment
    from evalsvc.pipeline.cluster import connect

    levers = [parse_levers(c) for c in configs]
    model_dir = str(prepare(model))
    engine_args = {"max_model_len": 2048}
    plan = grid.bench_plan(model_dir, [grid.msb(limit=grid.items_for(n, 4))], max_tokens=max_tokens,
                           engine_args=engine_args)  # fmt: skip
    gens = sum(c.generations for c in plan.cells)
    result = BenchResult("efficiency", {"model": model, "generations": gens, "max_tokens": max_tokens,
                                        "configs": [lv.label for lv in levers], "repeats": repeats},
                         env=environment())  # fmt: skip
    work = out / "efficiency-work"
    spec = grid.spec_for(plan)
    kwargs = engine_kwargs(spec)
    with Stopwatch() as sw:
        connect(None)
    with Stopwatch() as imp:
        import vllm  # noqa: F401  (the driver imports it once when it builds the first processor)
    result.notes.append(f"once per invocation, not counted in the rows: local Ray start {sw.s:.1f} s"
                        + (f", vLLM import in the driver {imp.s:.1f} s" if imp.s >= 0.5 else ""))
    for rep in range(1, repeats + 1):  # interleaved: baseline, then every setting, repeat after repeat
        base = {no_mp: _direct_row(result, plan, kwargs, work, no_mp, rep)
                for no_mp in ((False, True) if direct_no_mp else (False,))}  # fmt: skip
        for lv in levers:
            result.add(repeat=rep, **_ray_row(plan, spec, lv, work / lv.label.replace("+", "_"), base[False]))
    _headline(result)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _direct_row(result: BenchResult, plan, kwargs: dict, work: Path, no_mp: bool, rep: int) -> dict:
    d = run_direct(direct_job(plan, kwargs), work, {**CPU_ENV, **(NO_MP if no_mp else {})})
    d_tok = d["completion_tokens"]
    e2e = d["import_s"] + d["load_s"] + d["generate_s"]
    gen_s = d.get("engine_s") or d["generate_s"]  # queue of the first request → last token, as for evalsvc
    return result.add(
        system="vllm.LLM" + ("+nomp" if no_mp else ""), config="—", repeat=rep, wall_s=e2e, tokens=d_tok,
        tok_s=d_tok / e2e, startup_s=e2e - gen_s, steady_tok_s=d_tok / gen_s, prompt_tokens=d["prompt_tokens"],
    )  # fmt: skip


def _ray_row(plan, spec, lv: Levers, folder: Path, base: dict) -> dict:
    # The levers go into the plan's resources, as a manifest would set them: they size the input blocks
    # (engine_dataset) as well as the engine's batches.
    res = plan.manifest.resources.model_copy(update={"batch_size": lv.batch_size,
                                                     "max_concurrent_batches": lv.max_concurrent_batches})
    plan = replace(plan, manifest=plan.manifest.model_copy(update={"resources": res}))
    overrides: dict = {}
    if lv.no_mp:
        overrides["extra_env"] = {**(spec.extra_env or {}), **NO_MP}
    if lv.max_pending_requests is not None:
        overrides["processor_overrides"] = {"max_pending_requests": lv.max_pending_requests}
    s = grid.spec_for(plan, **overrides)
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.monotonic()  # the clock vLLM stamps its engine-core events with
    grid.run_pipeline(plan, grid.vllm_stage(s), str(folder), batch_size=lv.batch_size)
    wall = time.monotonic() - t0
    t = pads.dataset(str(folder), format="parquet", partitioning="hive").to_table(
        columns=["completion_tokens", "error", *grid.TIMING_COLUMNS]
    )
    tokens = sum(x or 0 for x in t.column("completion_tokens").to_pylist())
    errors = sum(e is not None for e in t.column("error").to_pylist())
    steady = steady_numbers(t0, t.column("t_queued").to_pylist(), t.column("t_last").to_pylist(), tokens)
    return {
        "system": "evalsvc", "config": lv.label, "wall_s": wall, "tokens": tokens, "tok_s": tokens / wall,
        "startup_s": steady["startup_s"], "steady_tok_s": steady["steady_tok_s"],
        "ratio_e2e": ratio(tokens / wall, base["tok_s"]), "ratio_steady": ratio(steady["steady_tok_s"], base["steady_tok_s"]),
        "records": t.num_rows, "errors": errors,
    }  # fmt: skip


def _headline(result: BenchResult) -> None:
    """Per setting, the median ratio over the repeats (each against its own repeat's baseline) and its range."""
    ours = [r for r in result.rows if r["system"] == "evalsvc"]
    if not ours:
        return
    by_config: dict[str, list[dict]] = {}
    for r in ours:
        by_config.setdefault(r["config"], []).append(r)
    median = {c: _median([r.get("ratio_steady") for r in rows]) for c, rows in by_config.items()}
    best = max(by_config, key=lambda c: median[c] or 0)
    res = Resources()
    default = Levers(res.batch_size, res.max_concurrent_batches).label
    result.ratios = {}
    for config, what in ((default, f"product default {default}"), (best, f"best: {best}")):
        if config not in by_config:
            continue
        for key, side in (("ratio_steady", "steady"), ("ratio_e2e", "end-to-end")):
            values = [r.get(key) for r in by_config[config]]
            result.ratios[f"{side} tokens/s evalsvc ÷ vllm.LLM ({what}{_range(values)})"] = _median(values)
    reached = [c for c, m in median.items() if (m or 0) >= 0.9]
    result.notes.append(f"settings reaching ≥ 0.9 of vllm.LLM excluding start-up: {', '.join(reached) or 'none'}")
    base = [r for r in result.rows if r["system"] == "vllm.LLM"]
    if len(base) > 1:
        steady = [r["steady_tok_s"] for r in base]
        result.notes.append(f"the baseline itself across {len(base)} repeats: {min(steady):.0f}–{max(steady):.0f} "
                            "steady tokens/s (what the machine's load does to one side alone)")  # fmt: skip
    mp = next((r for r in result.rows if r["system"] == "vllm.LLM"), None)
    nomp = next((r for r in result.rows if r["system"] == "vllm.LLM+nomp"), None)
    if mp is not None and nomp is not None:
        result.notes.append(
            f"vllm.LLM start-up (import + load): {mp['startup_s']:.1f} s with V1 multiprocessing, "
            f"{nomp['startup_s']:.1f} s with VLLM_ENABLE_V1_MULTIPROCESSING=0"
        )


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _range(values: list[float | None]) -> str:
    """', range 0.88–0.97 over 3 repeats' when there are several; empty for one."""
    known = [v for v in values if v is not None]
    return f", range {min(known):.2f}–{max(known):.2f} over {len(known)} repeats" if len(known) > 1 else ""
