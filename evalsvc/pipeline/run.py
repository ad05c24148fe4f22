"""Execute a Plan on Ray: per checkpoint one Ray Data pipeline (vLLM candidates → judge stage → Parquet).

Model-major: each engine (checkpoint) is loaded once per replica and serves every cell of its models.
"""

from __future__ import annotations

import secrets
from pathlib import Path
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from evalsvc.engines.vllm import EngineSpec, build_candidate_processor, from_engine_row, to_engine_row
from evalsvc.errors import SystemError_
from evalsvc.judge.stage import JudgeConfig, JudgeStage
from evalsvc.manifest.plan import Plan, build_plan
from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline import judge_setup
from evalsvc.pipeline.cluster import connect
from evalsvc.pipeline.dataset import engine_dataset
from evalsvc.pipeline.progress import StatusPoller, now, start_counter, status_doc
from evalsvc.pipeline.runinfo import run_document
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.record import PARTITION_COLS
from evalsvc.store.uri import S3Conn, filesystem, is_s3

JUDGE_BATCH = 32


@dataclass
class RunOptions:
    output: str | None = None  # overrides manifest.output.uri
    address: str | None = None  # Ray address; None = local Ray (or RAY_ADDRESS)
    run_id: str | None = None
    on_status: Callable[[dict], None] | None = None  # called with each status.json document
    keep_judge: bool = False  # leave the judge app running after the run


@dataclass
class RunResult:
    run_id: str
    output_uri: str
    state: str
    status: dict
    summary: dict | None = None
    info: dict = field(default_factory=dict)
    summary_table: object = None  # pyarrow.Table of the summary rows


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def execute(manifest: Manifest, opts: RunOptions) -> RunResult:
    conn = S3Conn.from_options(manifest.output.s3)
    root = opts.output or manifest.output.uri
    if not is_s3(root):
        root = str(Path(root).expanduser().resolve())
    control = ControlStore(conn)
    control.check_writable(root)
    plan = build_plan(manifest, conn)
    layout = RunLayout(root, opts.run_id or new_run_id(manifest.name))
    started_local = connect(opts.address)
    info = run_document(plan, layout, state="running", started=now())
    control.put_json(layout.run_json, info)

    counter = start_counter(f"evalsvc-progress-{layout.run_id}")
    status_lock = threading.Lock()

    def publish(counts: dict, state: str = "running") -> dict:
        doc = status_doc(plan, layout.run_id, state, counts, {})
        with status_lock:
            control.put_json(layout.status_json, doc)
        if opts.on_status:
            opts.on_status(doc)
        return doc

    judge_target = judge_setup.prepare(plan, local_ray=started_local)
    jcfg = JudgeConfig(
        run_id=layout.run_id,
        target=judge_target,
        rubrics=judge_setup.rubric_refs(plan),
        temperature=manifest.judge.temperature if manifest.judge else 0.0,
        max_tokens=manifest.judge.max_tokens if manifest.judge else 512,
        guided=manifest.judge.guided if manifest.judge else False,
        concurrency=manifest.judge.concurrency if manifest.judge else 1,
        progress_actor=f"evalsvc-progress-{layout.run_id}",
    )
    t0 = time.monotonic()
    state = "failed"
    try:
        with StatusPoller(counter, publish):
            _run_engines(plan, layout, conn, jcfg)
        state = "succeeded"
    finally:
        import ray

        counts = ray.get(counter.snapshot.remote())
        status = publish(counts, state)
        info.update(state=state, finished=now(), wall_s=round(time.monotonic() - t0, 1))
        control.put_json(layout.run_json, info)
        if judge_target is not None and judge_target.app_name and not opts.keep_judge:
            judge_setup.teardown(judge_target)
    summary, table = write_summary(layout, conn, control)
    return RunResult(layout.run_id, layout.uri, state, status, summary, info, table)


def _run_engines(plan: Plan, layout: RunLayout, conn: S3Conn, jcfg: JudgeConfig) -> None:
    engines = list(plan.engines().items())
    parallel = max(1, plan.manifest.resources.max_concurrent_models)
    if parallel == 1 or len(engines) == 1:
        for engine, models in engines:
            _run_engine(plan, engine, models, layout, conn, jcfg)
        return
    errors: list[BaseException] = []
    sem = threading.Semaphore(parallel)

    def worker(engine: str, models: list[str]) -> None:
        with sem:
            try:
                _run_engine(plan, engine, models, layout, conn, jcfg)
            except BaseException as e:  # surfaced after all threads end
                errors.append(e)

    threads = [threading.Thread(target=worker, args=e) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _run_engine(plan: Plan, engine: str, models: list[str], layout: RunLayout, conn: S3Conn, jcfg: JudgeConfig) -> None:
    ds = engine_dataset(plan, models)
    if ds is None:
        return
    processor = build_candidate_processor(engine_spec(plan, engine), to_engine_row, from_engine_row)
    ds = processor(ds)
    ds = ds.map_batches(
        JudgeStage,
        fn_constructor_kwargs={"config": jcfg},
        batch_format="pyarrow",
        batch_size=JUDGE_BATCH,
        concurrency=2,
        num_cpus=0.25,
    )
    fs, path = filesystem(layout.records, conn)
    try:
        ds.write_parquet(path, filesystem=fs, partition_cols=list(PARTITION_COLS))
    except Exception as e:
        raise SystemError_(f"run {layout.run_id}: engine {engine!r} failed: {type(e).__name__}: {str(e)[:2000]}") from e


def engine_spec(plan: Plan, engine: str) -> EngineSpec:
    from evalsvc.engines.prepare import resolve_model_source

    m = plan.model(engine)
    res = plan.manifest.resources
    return EngineSpec(
        source=resolve_model_source(m.source),
        engine_args=m.engine_args,
        replicas=m.replicas,
        cpu=res.gpus_per_replica == 0,
        cpus_per_replica=res.cpus_per_replica,
        gpus_per_replica=res.gpus_per_replica or 1.0,
        accelerator_type=res.accelerator_type,
        batch_size=res.batch_size,
        max_concurrent_batches=res.max_concurrent_batches,
        chat_template=m.chat_template,
    )


def write_summary(layout: RunLayout, conn: S3Conn, control: ControlStore) -> tuple[dict, object]:
    from evalsvc.report.read import read_records
    from evalsvc.report.summary import summarize, summary_json

    table = summarize(read_records(layout.records, conn))
    doc = summary_json(table, run_id=layout.run_id)
    control.put_json(layout.summary_json, doc)
    fs, path = filesystem(layout.summary_parquet, conn)
    import pyarrow.parquet as pq

    pq.write_table(table, path, filesystem=fs)
    return doc, table
