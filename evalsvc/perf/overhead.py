"""Suite `overhead`: evalsvc's pipeline with a null engine, end to end to S3 (DevS3), vs the bare Ray Data pipeline of
the same shape (read → map_batches → write_parquet, Hive-partitioned) as the substrate's limit.

The ratio is what evalsvc's own work costs per record: row expansion, record keys, the record stage, the schema.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pyarrow as pa

from evalsvc.perf import grid
from evalsvc.perf.report import BenchResult, environment, ratio
from evalsvc.store.record import PARTITION_COLS

BUCKET = "evalsvc-bench"
ROWS_PER_BLOCK = 1024  # evalsvc ships 256 items (× 4 strategies) per block


def bare_blocks(plan) -> list[pa.Table]:
    """The same rows and partitions as the plan's, item text as the only payload, in separately built blocks
    (slices of one table would each carry the whole table's buffers into the object store)."""
    model, rows = plan.models[0].name, []
    for b in plan.benchmarks:
        for item in plan.items[b.name]:
            for s in plan.strategies:
                rows.append({"model": model, "benchmark": b.name, "strategy": s.name, "item_id": item.item_id,
                             "prompt": item.text})  # fmt: skip
    return [pa.Table.from_pylist(rows[i : i + ROWS_PER_BLOCK]) for i in range(0, len(rows), ROWS_PER_BLOCK)]


def add_response(batch: pa.Table) -> pa.Table:
    return batch.append_column("response", pa.array([grid.NULL_RESPONSE] * batch.num_rows, pa.string()))


def run_bare(blocks: list[pa.Table], uri: str, conn) -> float:
    import ray

    from evalsvc.store.uri import filesystem

    t0 = time.monotonic()
    ds = ray.data.from_arrow(blocks).map_batches(add_response, batch_format="pyarrow", batch_size=256, num_cpus=0.25)
    fs, path = filesystem(uri, conn)
    ds.write_parquet(path, filesystem=fs, partition_cols=list(PARTITION_COLS))
    return time.monotonic() - t0


def run(records: int = 20_000, repeats: int = 2, out: Path = Path(".evalsvc/bench")) -> BenchResult:
    from evalsvc.engines.prepare import prepare
    from evalsvc.pipeline.cluster import connect
    from evalsvc.store.devs3 import DevS3

    model_dir = str(prepare("tiny"))  # only named in the records: the null engine never loads it
    plan = grid.bench_plan(model_dir, [grid.msb(split="llama3", limit=grid.items_for(records, 4))])
    n = sum(c.generations for c in plan.cells)
    result = BenchResult("overhead", {"records": n, "repeats": repeats, "sink": "DevS3 (SeaweedFS on loopback)"},
                         env=environment())  # fmt: skip
    connect(None)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="devs3-", dir=out) as tmp, DevS3(tmp) as s3:
        s3.create_bucket(BUCKET)
        blocks = bare_blocks(plan)
        run_bare(blocks[:2], f"s3://{BUCKET}/warmup", s3.conn)  # start Ray's worker pool first
        bare, ours = [], []
        for k in range(repeats):  # interleaved, so a change in the machine's load hits both sides alike
            bare.append(run_bare(blocks, f"s3://{BUCKET}/bare-{k}", s3.conn))
            ours.append(grid.run_pipeline(plan, grid.null_stage(), f"s3://{BUCKET}/evalsvc-{k}", s3.conn, batch_size=256))
        for name, walls in (("bare Ray Data (read → map_batches → write_parquet)", bare),
                            ("evalsvc pipeline, null engine", ours)):  # fmt: skip
            result.add(system=name, records=n, best_wall_s=min(walls), rec_s=n / min(walls),
                       walls_s=" ".join(f"{w:.1f}" for w in walls))  # fmt: skip
        written = _count(f"s3://{BUCKET}/evalsvc-0", s3.conn)
    result.ratios = {"evalsvc records/s ÷ bare Ray Data records/s (best of each)": ratio(min(bare), min(ours))}
    result.notes.append(f"records read back from S3 after the evalsvc run: {written:,} (expected {n:,})")
    return result


def _count(uri: str, conn) -> int:
    import pyarrow.dataset as pads

    from evalsvc.store.uri import filesystem

    fs, path = filesystem(uri, conn)
    return pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive").count_rows()
