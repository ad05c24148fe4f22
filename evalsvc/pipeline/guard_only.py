"""Guard-only mode: each guardrail classifies every benchmark request (input check); no candidates, no judge.

Rows (GUARD_SCHEMA) go to runs/<id>/guard/guardrail=…/benchmark=…; the classifier table (precision, recall,
F1, over-blocking, error rate) goes to summary.json's "guard_only" section.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pyarrow as pa

from evalsvc.errors import SystemError_, UserError
from evalsvc.guard.serving import deploy_guards, teardown
from evalsvc.guard.stage import Guarding, clients_for
from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline.lifecycle import lifecycle, new_run_id, open_output
from evalsvc.pipeline.preflight import check_cluster
from evalsvc.pipeline.progress import now
from evalsvc.pipeline.runinfo import run_document
from evalsvc.plan.arms import Arm
from evalsvc.plan.grid import Plan, build_plan
from evalsvc.store.atomic import atomic_local_filesystem
from evalsvc.store.documents import CellStatus, RunDoc, StatusDoc, SummaryDoc
from evalsvc.store.layout import RunLayout
from evalsvc.store.record import CATEGORY_FIELDS, GUARD_PARTITION_COLS, GUARD_SCHEMA
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
        if b.kind == "rubric":
            notes.append(f"benchmark {b.name!r} is a rubric benchmark: its conversations carry no safe/unsafe "
                         "expectation, so guard-only mode skips it")  # fmt: skip
            continue
        for item in plan.items[b.name]:
            cats = {f: item.categories.get(f) for f in CATEGORY_FIELDS}
            rows.append({"benchmark": b.name, "benchmark_kind": b.kind, "item_id": item.item_id, **cats,
                         "prompt": item.text, "expected": expected_label(b.kind, cats["control"])})  # fmt: skip
    return rows, notes


class GuardOnlyStage:
    """Ray Data callable class: item rows → one GUARD_SCHEMA row per item × guardrail."""

    def __init__(self, arms: tuple[Arm, ...], run_id: str, concurrency: int = 16, progress_actor: str | None = None):
        self.arms, self.run_id = arms, run_id
        self.core = Guarding(arms, clients_for(arms), concurrency=concurrency)
        self.progress = None
        if progress_actor:
            import ray

            self.progress = ray.get_actor(progress_actor)

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        rows = batch.to_pylist()
        out = await asyncio.gather(*(self.classify(r, a) for r in rows for a in self.arms))
        if self.progress is not None:
            self.progress.add.remote(tally(out))
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
            "guard_raw": o.raw if isinstance(o.raw, str) or o.raw is None else json.dumps(o.raw, ensure_ascii=False),
            "parse_ok": o.parse_ok,
            "error": o.error,
            "latency_s": o.latency_s,
        }


def cell_of(guardrail: str, benchmark: str) -> str:
    return f"{guardrail}/{benchmark}"


def tally(rows: list[dict]) -> dict[str, list[int]]:
    """Progress counts per guardrail × benchmark: [done, errors, parse failures]."""
    counts: dict[str, list[int]] = {}
    for r in rows:
        c = counts.setdefault(cell_of(r["guardrail"], r["benchmark"]), [0, 0, 0])
        c[0] += 1
        c[1] += r["error"] is not None
        c[2] += r["error"] is None and not r["parse_ok"]
    return counts


def execute_guard_only(manifest: Manifest, opts: GuardOnlyOptions) -> GuardOnlyResult:
    out = open_output(manifest, opts.output)
    plan = build_plan(manifest, out.conn)
    arms = tuple(a for a in plan.arms if a.guarded)
    if not arms:
        raise UserError("guardrails: guard-only mode scores guardrails as classifiers: list at least one guardrail "
                        "with `model` or `url` (besides none)")  # fmt: skip
    rows, notes = item_rows(plan)
    if not rows:
        raise UserError("benchmarks: guard-only mode needs a harm or high_risk benchmark (multiple-choice is skipped)")
    layout = RunLayout(out.root, opts.run_id or new_run_id(manifest.name))
    doc = _run_doc(plan, layout, arms, len(rows), notes)
    with lifecycle(opts.address, out=out, layout=layout, doc=doc, status_of=_status_of(layout, arms, rows)) as run:
        check_cluster(manifest, out.root, run.local_ray, candidates=False, judge=False)  # refuse what cannot work
        deployed = deploy_guards(manifest, list(arms))
        if not opts.keep_guards:
            run.on_close(lambda: teardown(deployed))
        _classify(rows, deployed, layout, out.conn, manifest.resources.batch_size, run.progress_actor)
    written = read_guard_rows(layout, out.conn)
    summary = _summary(layout, written, notes)
    out.control.put_json(layout.summary_json, summary)
    return GuardOnlyResult(layout.run_id, layout.uri, run.doc.state, written.num_rows, summary, notes)


def _status_of(layout: RunLayout, arms: tuple[Arm, ...], rows: list[dict]):
    per_benchmark: dict[str, int] = {}
    for r in rows:
        per_benchmark[r["benchmark"]] = per_benchmark.get(r["benchmark"], 0) + 1

    def status(counts: dict[str, list[int]], state: str) -> StatusDoc:
        cells = []
        for a in arms:
            for b, n in per_benchmark.items():
                done, errors, unparsed = [*counts.get(cell_of(a.name, b), []), 0, 0, 0][:3]  # the counter pads to COUNTS
                cells.append(CellStatus(cell_id=cell_of(a.name, b), guardrail=a.name, benchmark=b, total=n,
                                        done=min(n, done), errors=errors, parse_failures=unparsed))  # fmt: skip
        return StatusDoc(run_id=layout.run_id, mode="guard_only", state=state, updated=now(),
                         done=sum(c.done for c in cells), total=sum(c.total for c in cells), cells=cells)  # fmt: skip

    return status


def _run_doc(plan: Plan, layout: RunLayout, arms: tuple, n_items: int, notes: list[str]) -> RunDoc:
    doc = run_document(plan, layout, started=now(), mode="guard_only")
    doc.plan = {
        "guardrails": [g for g in plan.to_json()["guardrails"] if g["fingerprint"]],
        "benchmarks": [b.__dict__ for b in plan.benchmarks],
        "items": n_items,
        "guard_calls": n_items * sum(len(a.options.subjects()) for a in arms),
    }
    doc.notes = notes
    return doc


def _classify(
    rows: list[dict], arms: tuple[Arm, ...], layout: RunLayout, conn: S3Conn, batch_size: int, progress: str | None
) -> None:
    import ray

    schema = pa.schema([(c, pa.string()) for c in ITEM_COLUMNS])
    blocks = [pa.Table.from_pylist(rows[i : i + batch_size], schema=schema) for i in range(0, len(rows), batch_size)]
    ds = ray.data.from_arrow(blocks).map_batches(
        GuardOnlyStage,
        fn_constructor_kwargs={"arms": arms, "run_id": layout.run_id, "progress_actor": progress},
        batch_format="pyarrow",
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=2),
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
    from evalsvc.analysis.guard_only import guard_only_section

    return SummaryDoc(run_id=layout.run_id, mode="guard_only", guard_only=guard_only_section(table.to_pylist()),
                      notes=notes).to_json()  # fmt: skip
