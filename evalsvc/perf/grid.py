"""The pipeline shape the suites time, composed from evalsvc's own pieces: rows expanded in workers → candidate
stage (vLLM, or a null engine) → records (the judge left out) → Hive-partitioned Parquet.

Nothing here changes the product pipeline; it calls the same public functions `evalsvc run` calls.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyarrow as pa

from evalsvc.engines.vllm import EngineSpec, build_candidate_processor, from_engine_row, to_engine_row
from evalsvc.judge.stage import base_records
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import Plan, build_plan
from evalsvc.store.record import PARTITION_COLS
from evalsvc.store.row import PLAN_COLUMNS
from evalsvc.store.uri import S3Conn, filesystem

STRATEGIES = ["basic", "cot", "safety", "cot_safety"]
# Harm benchmarks need a judge section to validate; the suites never call it (the judge is left out on purpose).
UNUSED_JUDGE = {"url": "http://127.0.0.1:9/v1", "model_name": "unused"}
NULL_RESPONSE = "I can't help with that. Please talk to a licensed clinician."
NULL_COMPLETION_TOKENS = 16
TIMING_COLUMNS = ("t_queued", "t_last")
RECORD_STAGE = {"batch_format": "pyarrow", "num_cpus": 0.25}  # as the judge stage runs (2 actors, below)

Stage = Callable[[Any], Any]  # Dataset → Dataset


def items_for(records: int, strategies: int, samples: int = 1) -> int:
    """Items needed so items × strategies × samples reaches `records`."""
    return max(1, math.ceil(records / (strategies * samples)))


def msb(name: str = "msb", split: str = "test", limit: int | None = None) -> dict:
    return {"name": name, "dataset": "medsafetybench", "split": split, "select": {"limit": limit} if limit else {}}


def bundled(dataset: str, limit: int | None = None) -> dict:
    return {"name": dataset, "dataset": dataset, "select": {"limit": limit} if limit else {}}


def bench_plan(
    model_dir: str,
    benchmarks: list[dict],
    *,
    strategies: list[str] = STRATEGIES,
    max_tokens: int = 32,
    engine_args: dict | None = None,
    resources: dict | None = None,
    output: str = "/tmp/evalsvc-bench-unused",
) -> Plan:
    """A Plan through evalsvc's own manifest validation and item loading (greedy sampling, one sample per item)."""
    manifest = validate_manifest(
        {
            "name": "bench",
            "models": [{"name": "candidate", "source": model_dir, "engine_args": engine_args or {}}],
            "benchmarks": benchmarks,
            "strategies": strategies,
            "sampling": {"max_tokens": max_tokens, "temperature": 0.0},
            "judge": UNUSED_JUDGE,
            "output": {"uri": output},
            "resources": resources or {},
        },
        source="<bench>",
    )
    return build_plan(manifest)


def spec_for(plan: Plan, **overrides: Any) -> EngineSpec:
    """The EngineSpec `evalsvc run` would build for the plan's one checkpoint, with bench overrides."""
    from evalsvc.pipeline.engines import engine_spec

    return replace(engine_spec(plan, "candidate"), **overrides)


def vllm_stage(spec: EngineSpec) -> Stage:
    """The product's candidate processor (`spec.processor_overrides` carries bench-only levers such as
    max_pending_requests), with vLLM's per-request stats on to keep the engine-core timestamps."""
    return build_candidate_processor(replace(spec, request_stats=True), to_engine_row, timed_from_engine_row)


def timed_from_engine_row(row: dict) -> dict:
    """from_engine_row plus when the request was queued in / finished by the engine core (vLLM's per-request
    stats, CLOCK_MONOTONIC, which every process on a machine shares), to split start-up from generation."""
    out = from_engine_row(row)
    stats = row.get("metrics") or {}
    out["t_queued"] = stats.get("queued_ts") or None
    out["t_last"] = stats.get("last_token_ts") or None
    return out


def null_engine(batch: pa.Table) -> pa.Table:
    """A candidate stage with no model: every row gets the same answer (isolates evalsvc's own overhead)."""
    n = batch.num_rows
    cols = {c: batch.column(c) for c in PLAN_COLUMNS if c in batch.column_names}
    cols.update(
        response=pa.array([NULL_RESPONSE] * n, pa.string()),
        error=pa.nulls(n, pa.string()),
        prompt_tokens=pa.array([0] * n, pa.int64()),
        completion_tokens=pa.array([NULL_COMPLETION_TOKENS] * n, pa.int64()),
        latency_s=pa.array([0.0] * n, pa.float64()),
        finish_reason=pa.array(["stop"] * n, pa.string()),
    )
    return pa.table(cols)


def null_stage(batch_size: int = 256) -> Stage:
    return lambda ds: ds.map_batches(null_engine, batch_format="pyarrow", batch_size=batch_size, num_cpus=0.25)


class RecordStage:
    """The judge stage's shape with no judge: candidate rows → RECORD_SCHEMA records (plus the engine timestamps
    when timed)."""

    def __init__(self, run_id: str):
        self.run_id = run_id

    def __call__(self, batch: pa.Table) -> pa.Table:
        table = base_records(batch, self.run_id)
        for name in TIMING_COLUMNS:
            if name in batch.column_names:
                table = table.append_column(name, batch.column(name).cast(pa.float64()))
        return table


def run_pipeline(plan: Plan, candidate: Stage, out_uri: str, conn: S3Conn | None = None, batch_size: int = 16) -> float:
    """Execute one engine's pipeline end to end; returns wall seconds (building the dataset included)."""
    import ray

    from evalsvc.pipeline.dataset import engine_dataset

    t0 = time.monotonic()
    ds = engine_dataset(plan, [m.name for m in plan.models])
    ds = candidate(ds).map_batches(
        RecordStage, fn_constructor_kwargs={"run_id": "bench"}, batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=2), **RECORD_STAGE,
    )  # fmt: skip
    fs, path = filesystem(out_uri, conn)
    ds.write_parquet(path, filesystem=fs, partition_cols=list(PARTITION_COLS))
    return time.monotonic() - t0


def engine_actors() -> set[str]:
    """Ids of every vLLM engine actor this Ray has created (alive or dead), from the GCS actor table."""
    from ray._private import state  # the public state API needs the dashboard, which local runs leave off

    return {aid for aid, a in state.actors().items() if "vLLMEngineStageUDF" in a["ActorClassName"]}
