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

from evalsvc.engines.vllm import (
    EngineSpec,
    build_candidate_processor,
    from_engine_row,
    to_cpu_engine_row,
    to_engine_row,
)
from evalsvc.errors import SystemError_, UserError
from evalsvc.guard.stage import GuardConfig, apply_guards
from evalsvc.judge.calibration import calibrate_run, load_slice
from evalsvc.judge.stage import JudgeConfig, JudgeStage
from evalsvc.manifest.plan import Plan, build_plan
from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline import judge_setup
from evalsvc.guard import serving as guard_serving
from evalsvc.pipeline.cluster import connect
from evalsvc.pipeline.dataset import engine_dataset
from evalsvc.pipeline.preflight import check_cluster
from evalsvc.pipeline.release import engine_scope
from evalsvc.pipeline.reuse import CacheJoin, ReusePlan, plan_reuse
from evalsvc.pipeline.progress import StatusPoller, now, start_counter, status_doc
from evalsvc.pipeline.runinfo import run_document
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.atomic import atomic_local_filesystem
from evalsvc.store.index import KeyIndex, record_folders, scan_keys
from evalsvc.store.record import PARTITION_COLS
from evalsvc.store.uri import S3Conn, filesystem, is_s3



@dataclass
class RunOptions:
    output: str | None = None  # overrides manifest.output.uri
    address: str | None = None  # Ray address; None = local Ray (or RAY_ADDRESS)
    run_id: str | None = None
    on_status: Callable[[dict], None] | None = None  # called with each status.json document
    keep_judge: bool = False  # leave the judge app running after the run
    cache_records: list[str] | None = None  # read cached records only from these records/ folders
    generate: bool = True  # False: every generation must come from the cache (judge rescore)


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
    calibration_items = load_slice(manifest.judge, conn)  # a bad calibration file fails now, before any engine loads
    if opts.generate:
        from evalsvc.engines.http import check_endpoint_keys

        check_endpoint_keys(plan.manifest)  # a missing ${VAR} fails now, not after other engines ran
        if any(m.adapter for m in plan.models):
            from evalsvc.engines.lora import check_adapters

            check_adapters(plan.manifest, conn)  # a missing or mismatched LoRA adapter fails before any engine loads
    layout = RunLayout(root, opts.run_id or new_run_id(manifest.name))
    started_local = connect(opts.address)
    check_cluster(manifest, root, started_local, candidates=opts.generate)  # refuse what cannot work, before any load
    reuse = reuse_for(plan, layout, root, conn, opts.cache_records)
    if not opts.generate and any(reuse.new_generations.values()):
        missing = sum(reuse.new_generations.values())
        raise UserError(f"{missing} generation(s) are not in the source run: rescoring never generates; "
                        "check that the manifest's models, benchmarks and strategies match the run")
    info = run_document(plan, layout, state="running", started=now())
    info["reuse"] = reuse.report()
    control.put_json(layout.run_json, info)

    counter = start_counter(f"evalsvc-progress-{layout.run_id}")
    status_lock = threading.Lock()

    def publish(counts: dict, state: str = "running") -> dict:
        doc = status_doc(plan, layout.run_id, state, counts, reuse.skipped_by_cell)
        with status_lock:
            control.put_json(layout.status_json, doc)
        if opts.on_status:
            opts.on_status(doc)
        return doc

    wants_judge = reuse.judge_calls or calibration_items
    judge_target = judge_setup.prepare(plan, local_ray=started_local) if wants_judge else None
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
    guards = guard_serving.prepare(plan, reuse, local_ray=started_local)  # None without a guardrail axis
    t0 = time.monotonic()
    state = "failed"
    try:
        with StatusPoller(counter, publish):
            _run_engines(plan, layout, conn, jcfg, reuse, guards)
        if calibration_items:
            calibrate_run(manifest.judge, judge_target, calibration_items, layout.uri, conn)
        state = "succeeded"
    finally:
        import ray

        counts = ray.get(counter.snapshot.remote())
        if (control.get_json(layout.run_json) or {}).get("state") == "cancelled":
            state = "cancelled"  # `evalsvc cancel` marked it; the stop signal's SystemExit must not turn it into "failed"
        status = publish(counts, state)
        info.update(state=state, finished=now(), wall_s=round(time.monotonic() - t0, 1))
        control.put_json(layout.run_json, info)
        if judge_target is not None and not opts.keep_judge:
            judge_setup.teardown(judge_target)
        if guards is not None and not opts.keep_judge:
            guard_serving.teardown(guards.arms)
    summary, table = write_summary(layout, conn, control)
    return RunResult(layout.run_id, layout.uri, state, status, summary, info, table)


def _run_engines(
    plan: Plan, layout: RunLayout, conn: S3Conn, jcfg: JudgeConfig, reuse: ReusePlan, guards: GuardConfig | None = None
) -> None:
    engines = list(plan.engines().items())
    parallel = max(1, plan.manifest.resources.max_concurrent_models)
    if parallel == 1 or len(engines) == 1:
        for engine, models in engines:
            with engine_scope():  # its actors dead and placement groups removed before the next engine loads
                _run_engine(plan, engine, models, layout, conn, jcfg, reuse, guards)
        return
    errors: list[BaseException] = []
    sem = threading.Semaphore(parallel)

    def worker(engine: str, models: list[str]) -> None:
        with sem:
            try:
                _run_engine(plan, engine, models, layout, conn, jcfg, reuse, guards)
            except BaseException as e:  # surfaced after all threads end
                errors.append(e)

    threads = [threading.Thread(target=worker, args=e) for e in engines]
    with engine_scope():
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _run_engine(
    plan: Plan, engine: str, models: list[str], layout: RunLayout, conn: S3Conn, jcfg: JudgeConfig, reuse: ReusePlan,
    guards: GuardConfig | None = None,
) -> None:
    """Candidates (or cached generations) → guard stage (one row per guardrail arm) → judge stage → Parquet."""
    judge = {
        "fn_constructor_kwargs": {"config": jcfg},
        "batch_format": "pyarrow",
        "batch_size": plan.manifest.resources.batch_size,
        "concurrency": 2,
        "num_cpus": 0.25,
    }
    if reuse.cached_by_engine.get(engine):  # cached generations skip the engine (and the judge if it matches)
        cached = engine_dataset(plan, models, only=reuse.cached)
        cached = cached.map_batches(
            CacheJoin,
            fn_constructor_kwargs={"sources": reuse.sources, "conn": conn, "judge_sig": reuse.judge_sig},
            batch_format="pyarrow",
            batch_size=256,
            concurrency=1,
            num_cpus=0.25,
        )
        cached = apply_guards(cached, guards, plan.manifest.resources.batch_size)
        _write(cached.map_batches(JudgeStage, **judge), layout, conn, engine)
    if reuse.new_generations.get(engine, 0) == 0:
        return  # nothing left to generate: the engine is never loaded
    ds = engine_dataset(plan, models, skip=reuse.skip | reuse.cached)
    if plan.model(engine).endpoint is not None:  # an API candidate: HTTP requests instead of an engine load
        processor = endpoint_processor(plan, engine)
    else:
        spec = engine_spec(plan, engine)
        processor = build_candidate_processor(spec, to_cpu_engine_row if spec.cpu else to_engine_row, from_engine_row)
    generated = apply_guards(processor(ds), guards, plan.manifest.resources.batch_size)
    _write(generated.map_batches(JudgeStage, **judge), layout, conn, engine)


def _write(ds, layout: RunLayout, conn: S3Conn, engine: str) -> None:
    fs, path = filesystem(layout.records, conn)
    if not is_s3(layout.records):  # S3 PUTs are atomic; local files are published by rename
        fs = atomic_local_filesystem()
    try:
        ds.write_parquet(path, filesystem=fs, partition_cols=list(PARTITION_COLS))
    except Exception as e:
        raise SystemError_(f"run {layout.run_id}: engine {engine!r} failed: {type(e).__name__}: {str(e)[:2000]}") from e


def reuse_for(plan: Plan, layout: RunLayout, root: str, conn: S3Conn, only: list[str] | None = None) -> ReusePlan:
    """Keys this run already has (resume in place) and keys earlier runs computed (the cache)."""
    done = scan_keys([layout.records], conn)
    cache_opt = plan.manifest.output.cache
    cache_root = root if cache_opt is True else (cache_opt or None)
    if only is not None:
        cache = scan_keys(only, conn)
    elif cache_root:
        cache = scan_keys(record_folders(cache_root, conn, exclude_run=layout.run_id), conn)
    else:
        cache = KeyIndex()
    sig = judge_setup.judge_signatures(plan)
    reuse = plan_reuse(plan, done, cache, sig)
    reuse.sources, reuse.judge_sig = cache.sources, sig
    if reuse.from_this_run:  # guardrail arms still missing re-read the unguarded answer this run already has
        reuse.sources = [*reuse.sources, layout.records]
    return reuse


def endpoint_processor(plan: Plan, engine: str):
    from evalsvc.engines.http import build_endpoint_processor, endpoint_spec

    m = plan.model(engine)
    field = f"models.{[x.name for x in plan.manifest.models].index(engine)}.endpoint"
    return build_endpoint_processor(endpoint_spec(m.endpoint, field, plan.manifest.resources.batch_size))


def engine_spec(plan: Plan, engine: str) -> EngineSpec:
    from evalsvc.engines.prepare import resolve_model_source

    m = plan.model(engine)
    res = plan.manifest.resources
    source = resolve_model_source(m.source)
    lora = None
    if any(p.adapter for p in plan.models if p.engine == engine):  # one engine load serves the base and its adapters
        from evalsvc.engines.lora import serve_adapters

        lora = serve_adapters(plan.manifest, engine, source, S3Conn.from_options(plan.manifest.output.s3))
    return EngineSpec(
        source=source,
        engine_args=lora.engine_args if lora else m.engine_args,
        replicas=m.replicas,
        cpu=res.gpus_per_replica == 0,
        cpus_per_replica=res.cpus_per_replica,
        gpus_per_replica=res.gpus_per_replica or 1.0,
        accelerator_type=res.accelerator_type,
        batch_size=res.batch_size,
        max_concurrent_batches=res.max_concurrent_batches,
        chat_template=m.chat_template,
        lora_dir=lora.dynamic_path if lora else None,
        lora_models=lora.row_models if lora else None,
    )


def write_summary(layout: RunLayout, conn: S3Conn, control: ControlStore) -> tuple[dict, object]:
    from evalsvc.report.read import read_records
    from evalsvc.report.agreement import judge_sections
    from evalsvc.report.read import open_run
    from evalsvc.report.summary import summarize, summary_json

    table = summarize(read_records(layout.records, conn))
    doc = summary_json(table, run_id=layout.run_id)
    doc.update(judge_sections(open_run(layout.uri, None, conn)))  # "agreement" (a jury), "calibration" (a slice)
    control.put_json(layout.summary_json, doc)
    fs, path = filesystem(layout.summary_parquet, conn)
    import pyarrow.parquet as pq

    pq.write_table(table, path, filesystem=fs)
    return doc, table
