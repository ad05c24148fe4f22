"""Guard-only mode: each guardrail classifies every benchmark request (input check); no candidates, no judge.

Rows (GUARD_SCHEMA) go to runs/<id>/guard/guardrail=…/benchmark=…; the classifier table (precision, recall,
F1, over-blocking, error rate) goes to summary.json's "guard_only" section.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import pyarrow as pa

from evalsvc.benchmarks.item import CATEGORY_FIELDS
from evalsvc.errors import SystemError_, UserError
from evalsvc.guard.arms import Arm
from evalsvc.guard.stage import Guarding, clients_for
from evalsvc.manifest.plan import Plan, build_plan
from evalsvc.manifest.schema import Manifest
from evalsvc.store.layout import RunLayout
from evalsvc.store.record import GUARD_PARTITION_COLS, GUARD_SCHEMA
from evalsvc.store.uri import S3Conn, filesystem, is_s3

ITEM_COLUMNS = ("benchmark", "benchmark_kind", "item_id", *CATEGORY_FIELDS, "prompt", "expected")


@dataclass
class GuardOnlyOptions:
    output: str | None = None  # overrides manifest.output.uri
    address: str | None = None  # Ray address; None = local Ray (or RAY_ADDRESS)
    run_id: str | None = None
    keep_guards: bool = False  # leave the served guards running afterwards


@dataclass
class GuardOnlyResult:
    run_id: str
    output_uri: str
    state: str
    rows: int
    summary: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def expected_label(kind: str, control: str | None) -> str | None:
    """What the guard should say: harmful requests and high-risk queries are unsafe, benign controls safe."""
    if kind == "harm":
        return "unsafe"
    if kind == "high_risk":
        return "safe" if (control or "").strip().lower() == "true" else "unsafe"
    return None  # mcq: a quiz question is neither


def item_rows(plan: Plan) -> tuple[list[dict], list[str]]:
    """One row per judged benchmark item (request + expected label); notes for the benchmarks left out."""
    rows, notes = [], []
    for b in plan.benchmarks:
        if b.kind == "mcq":
            notes.append(f"benchmark {b.name!r} is multiple-choice (mcq): its questions carry no safe/unsafe "
                         "expectation, so guard-only mode skips it")  # fmt: skip
            continue
        for item in plan.items[b.name]:
            cats = {f: item.categories.get(f) for f in CATEGORY_FIELDS}
            rows.append({"benchmark": b.name, "benchmark_kind": b.kind, "item_id": item.item_id, **cats,
                         "prompt": item.text, "expected": expected_label(b.kind, cats["control"])})  # fmt: skip
    return rows, notes


class GuardOnlyStage:
    """Ray Data callable class: item rows → one GUARD_SCHEMA row per item × guardrail."""

    def __init__(self, arms: tuple[Arm, ...], run_id: str, concurrency: int = 16):
        self.arms, self.run_id = arms, run_id
        self.core = Guarding(arms, clients_for(arms), concurrency=concurrency)

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        rows = batch.to_pylist()
        out = await asyncio.gather(*(self.classify(r, a) for r in rows for a in self.arms))
        yield pa.Table.from_pylist(out, schema=GUARD_SCHEMA)

    async def classify(self, row: dict, arm: Arm) -> dict:
        o = await self.core.check(arm, "input", row["prompt"])
        return {
            **{c: row.get(c) for c in ITEM_COLUMNS},
            "run_id": self.run_id,
            "guardrail": arm.name,
            "guard_model": arm.label,
            "guard_format": arm.format.label if arm.format else None,
            "decision": o.decision,
            "guard_categories": ",".join(o.categories) or None,
            "guard_raw": o.raw,
            "parse_ok": o.parse_ok,
            "error": o.error,
            "latency_s": o.latency_s,
        }


def execute_guard_only(manifest: Manifest, opts: GuardOnlyOptions) -> GuardOnlyResult:
    from evalsvc.guard.serving import deploy_guards, teardown
    from evalsvc.pipeline.cluster import connect
    from evalsvc.pipeline.preflight import check_cluster
    from evalsvc.pipeline.progress import now
    from evalsvc.pipeline.run import new_run_id
    from evalsvc.store.control import ControlStore

    conn = S3Conn.from_options(manifest.output.s3)
    root = opts.output or manifest.output.uri
    root = root if is_s3(root) else str(Path(root).expanduser().resolve())
    control = ControlStore(conn)
    control.check_writable(root)
    plan = build_plan(manifest, conn)
    arms = tuple(a for a in plan.arms if a.guarded)
    if not arms:
        raise UserError("guardrails: guard-only mode scores guardrails as classifiers: list at least one guardrail "
                        "with `model` or `url` (besides none)")  # fmt: skip
    rows, notes = item_rows(plan)
    if not rows:
        raise UserError("benchmarks: guard-only mode needs a harm or high_risk benchmark (multiple-choice is skipped)")
    layout = RunLayout(root, opts.run_id or new_run_id(manifest.name))
    started_local = connect(opts.address)
    check_cluster(manifest, root, started_local, candidates=False, judge=False)  # refuse what cannot work here
    info = _run_doc(plan, layout, arms, len(rows), notes, now())
    control.put_json(layout.run_json, info)
    deployed: tuple[Arm, ...] = ()
    t0, state = time.monotonic(), "failed"
    try:
        deployed = deploy_guards(manifest, list(arms), started_local)
        _classify(rows, deployed, layout, conn, manifest.resources.batch_size)
        state = "succeeded"
    finally:
        info.update(state=state, finished=now(), wall_s=round(time.monotonic() - t0, 1))
        control.put_json(layout.run_json, info)
        if not opts.keep_guards:
            teardown(deployed)
    written = read_guard_rows(layout, conn)
    summary = _summary(layout, written, notes)
    control.put_json(layout.summary_json, summary)
    status = {"run_id": layout.run_id, "state": state, "updated": now(), "mode": "guard_only",
              "done": written.num_rows, "total": len(rows) * len(arms), "cells": []}  # fmt: skip
    control.put_json(layout.status_json, status)
    return GuardOnlyResult(layout.run_id, layout.uri, state, written.num_rows, summary, notes)


def _run_doc(plan: Plan, layout: RunLayout, arms: tuple, n_items: int, notes: list[str], started: str) -> dict:
    from evalsvc.pipeline.runinfo import run_document

    info = run_document(plan, layout, state="running", started=started)
    info["mode"] = "guard_only"
    info["plan"] = {
        "guardrails": [g for g in plan.to_json()["guardrails"] if g["fingerprint"]],
        "benchmarks": [b.__dict__ for b in plan.benchmarks],
        "items": n_items,
        "guard_calls": n_items * len(arms),
    }
    info["notes"] = notes
    return info


def _classify(rows: list[dict], arms: tuple[Arm, ...], layout: RunLayout, conn: S3Conn, batch_size: int) -> None:
    import ray

    from evalsvc.store.atomic import atomic_local_filesystem

    schema = pa.schema([(c, pa.string()) for c in ITEM_COLUMNS])
    blocks = [pa.Table.from_pylist(rows[i : i + batch_size], schema=schema) for i in range(0, len(rows), batch_size)]
    ds = ray.data.from_arrow(blocks).map_batches(
        GuardOnlyStage,
        fn_constructor_kwargs={"arms": arms, "run_id": layout.run_id},
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=2,
        num_cpus=0.25,
    )
    fs, path = filesystem(layout.guard, conn)
    if not is_s3(layout.guard):  # local files are published by rename, like records
        fs = atomic_local_filesystem()
    try:
        ds.write_parquet(path, filesystem=fs, partition_cols=list(GUARD_PARTITION_COLS))
    except Exception as e:
        raise SystemError_(f"run {layout.run_id}: guard-only classification failed: {type(e).__name__}: "
                           f"{str(e)[:2000]}") from e  # fmt: skip


def read_guard_rows(layout: RunLayout, conn: S3Conn | None) -> pa.Table:
    """The guard-only rows of a run (partition columns restored from the Hive path)."""
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    fs, path = filesystem(layout.guard, conn)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return GUARD_SCHEMA.empty_table()
    partitioning = pads.partitioning(pa.schema([(c, pa.string()) for c in GUARD_PARTITION_COLS]), flavor="hive")
    dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning, schema=GUARD_SCHEMA,
                           exclude_invalid_files=True)  # fmt: skip
    return dataset.to_table()


def _summary(layout: RunLayout, table: pa.Table, notes: list[str]) -> dict:
    from evalsvc.report.guard_only import guard_only_section
    from evalsvc.report.summary import SUMMARY_VERSION

    return {"summary_version": SUMMARY_VERSION, "run_id": layout.run_id, "mode": "guard_only", "rows": [],
            "guard_only": guard_only_section(table.to_pylist()), "notes": notes}  # fmt: skip
