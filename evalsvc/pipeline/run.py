"""Execute a Plan on Ray: per checkpoint one Ray Data pipeline (vLLM candidates → judge stage → Parquet).

Model-major: each engine (checkpoint) is loaded once per replica and serves every cell of its models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from evalsvc.engines import apps
from evalsvc.engines.startup import AppStartup
from evalsvc.engines.vllm import (
    LIGHT_STAGE_CPUS,
    build_candidate_processor,
    from_engine_row,
    settle_engine_row,
    to_cpu_engine_row,
    to_engine_row,
)
from evalsvc.errors import SystemError_, UserError
from evalsvc.guard import serving as guard_serving
from evalsvc.guard.stage import GuardConfig, apply_guards
from evalsvc.judge import setup as judge_setup
from evalsvc.judge.calibration import calibrate_run, load_slice
from evalsvc.judge.stage import JudgeConfig, JudgeStage
from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline import probing
from evalsvc.pipeline.dataset import engine_dataset
from evalsvc.pipeline.engines import endpoint_processor, engine_spec
from evalsvc.pipeline.lifecycle import lifecycle, new_run_id, open_output
from evalsvc.pipeline.preflight import check_cluster
from evalsvc.pipeline.progress import now, status_doc
from evalsvc.pipeline.release import engine_scope
from evalsvc.pipeline.reuse import CacheJoin, ReusePlan, plan_reuse
from evalsvc.pipeline.runinfo import run_document
from evalsvc.plan.grid import Plan, build_plan
from evalsvc.store.atomic import atomic_local_filesystem
from evalsvc.store.control import ControlStore
from evalsvc.store.index import KeyIndex, record_folders, scan_keys
from evalsvc.store.layout import RunLayout
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


def execute(manifest: Manifest, opts: RunOptions) -> RunResult:
    started_at = time.time()
    out = open_output(manifest, opts.output)
    plan = build_plan(manifest, out.conn)
    calibration_items = load_slice(manifest.judge, out.conn)  # a bad calibration file fails now, before any engine loads
    if opts.generate:
        check_before_engines(plan, out.conn)
    layout = RunLayout(out.root, opts.run_id or new_run_id(manifest.name))
    reuse: ReusePlan | None = None

    def status_of(counts: dict, state: str):
        return status_doc(plan, layout.run_id, state, counts, reuse.skipped_by_cell if reuse else {},
                          reuse.skipped_criteria if reuse else {})  # fmt: skip

    doc = run_document(plan, layout, started=now(), mode="grid" if opts.generate else "rescore")
    with lifecycle(opts.address, out=out, layout=layout, doc=doc, status_of=status_of, on_status=opts.on_status,
                   started_at=started_at) as run:  # fmt: skip
        check_cluster(manifest, out.root, run.local_ray, candidates=opts.generate)  # refuse what cannot work here
        reuse = reuse_for(plan, layout, out.root, out.conn, opts.cache_records)
        if not opts.generate and any(reuse.new_generations.values()):
            missing = sum(reuse.new_generations.values())
            raise UserError(f"{missing} generation(s) are not in the source run: rescoring never generates; "
                            "check that the manifest's models, benchmarks and strategies match the run")  # fmt: skip
        probes = probing.run_probes_for(plan, list(judge_setup.rubric_refs(plan)), layout.uri, out.conn,
                                        reuse.sources, reuse.judge_sig)  # fmt: skip
        run.doc.reuse, run.doc.probes = reuse.report(), probes.note
        run.save()
        judged_apart = bool(calibration_items or probes.probes)  # probes: judge health even on a full cache
        startup, judge_target, guards = _start_apps(plan, layout, reuse, run, opts, judged_apart)
        jcfg = judge_config(plan, layout.run_id, judge_target, run.progress_actor)

        def judge_apart() -> None:  # calibration and probes: beside the grid, never among its records
            if calibration_items:
                calibrate_run(manifest.judge, judge_target, calibration_items, layout.uri, out.conn)
            probing.score(probes, jcfg, layout.uri, out.conn)
            run.mark("judged_apart")

        apart = probing.JudgedApart(startup.wait, judge_apart) if judged_apart else None
        if apart is not None:
            run.on_close(apart.stop)  # a run that ends early does not start them
            apart.start()
        try:
            _run_engines(plan, layout, out.conn, jcfg, reuse, guards)
        except Exception as e:
            if startup.error is not None:  # the app that never came up is the cause; the pipeline's error a symptom
                raise startup.error from e
            raise
        run.mark("pipeline_done")
        startup.raise_error()
        if apart is not None:
            apart.join()
        run.doc.probes = probes.note
    summary, table = write_summary(layout, out.conn, out.control, run.doc.retries)
    status = out.control.get_json(layout.status_json) or {}
    return RunResult(layout.run_id, layout.uri, run.doc.state, status, summary, run.doc.to_json(), table)


def _start_apps(plan: Plan, layout: RunLayout, reuse: ReusePlan, run, opts: RunOptions, judged_apart: bool):
    """The judge's and guards' Serve apps, started in the background: candidates generate meanwhile and their
    answers wait in the judge (guard) stage until its app is RUNNING. `judged_apart`: the judge is also called
    after the grid (calibration, probes). Returns (startup, judge target, guards)."""
    startup = AppStartup(f"evalsvc-apps-{layout.run_id}", on_event=run.mark)
    judge_target = None
    if reuse.judge_calls or judged_apart:
        judge_target = judge_setup.prepare(plan, startup=startup)
        if judge_target is not None and not opts.keep_judge:
            run.on_close(lambda: judge_setup.teardown(judge_target))
    guards = _guards(plan, reuse, run, opts.keep_judge, startup)
    run.on_close(startup.stop)  # registered last, called first: no app is still being started at teardown
    apps.launch(startup)
    return startup, judge_target, guards


def check_before_engines(plan: Plan, conn: S3Conn) -> None:
    """What would fail later fails now, before any engine loads: endpoint keys, LoRA adapters."""
    from evalsvc.engines.http import check_endpoint_keys

    check_endpoint_keys(plan.manifest)  # a missing ${VAR} fails now, not after other engines ran
    if any(m.adapter for m in plan.models):
        from evalsvc.engines.lora import check_adapters

        check_adapters(plan.manifest, conn)  # a missing or mismatched LoRA adapter fails before any engine loads


def judge_config(plan: Plan, run_id: str, target, progress_actor: str | None) -> JudgeConfig:
    j = plan.manifest.judge
    return JudgeConfig(
        run_id=run_id,
        target=target,
        rubrics=judge_setup.rubric_refs(plan),
        temperature=j.temperature if j else 0.0,
        max_tokens=j.max_tokens if j else 512,
        guided=j.guided if j else False,
        concurrency=j.concurrency if j else 1,
        progress_actor=progress_actor,
    )


def _guards(plan: Plan, reuse: ReusePlan, run, keep: bool, startup: AppStartup | None = None) -> GuardConfig | None:
    """The guard stage's config: None without a guardrail axis; guards are deployed only when a call is due."""
    if not plan.arms:
        return None
    arms = tuple(plan.arms)
    if reuse.guarded_rows:
        arms = guard_serving.deploy_guards(plan.manifest, plan.arms, startup)
        if not keep:
            run.on_close(lambda: guard_serving.teardown(arms))
    return GuardConfig(arms=arms, done=frozenset(reuse.arms_done))


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
    import ray

    judge = {
        "fn_constructor_kwargs": {"config": jcfg},
        "batch_format": "pyarrow",
        "batch_size": plan.manifest.resources.batch_size,
        "compute": ray.data.ActorPoolStrategy(size=judge_actors(jcfg)),
        "num_cpus": 0.25,
    }
    if reuse.cached_by_engine.get(engine):  # cached generations skip the engine (and the judge if it matches)
        cached = engine_dataset(plan, models, only=reuse.cached)
        cached = cached.map_batches(
            CacheJoin,
            fn_constructor_kwargs={"sources": reuse.sources, "conn": conn, "judge_sig": reuse.judge_sig},
            batch_format="pyarrow",
            batch_size=256,
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=0.25,
        )
        cached = apply_guards(cached, guards, plan.manifest.resources.batch_size)
        _write(cached.map_batches(JudgeStage, **judge), layout, conn, engine)
    if reuse.new_generations.get(engine, 0) == 0:
        return  # nothing left to generate: the engine is never loaded
    ds = engine_dataset(plan, models, skip=reuse.skip | reuse.cached)
    if plan.model(engine).endpoint is not None:  # an API candidate: HTTP requests instead of an engine load
        generated = endpoint_processor(plan, engine)(ds)
    else:
        spec = engine_spec(plan, engine)
        processor = build_candidate_processor(spec, to_cpu_engine_row if spec.cpu else to_engine_row, from_engine_row)
        generated = processor(ds).map(settle_engine_row, num_cpus=LIGHT_STAGE_CPUS)  # failed rows skip the postprocess
    generated = apply_guards(generated, guards, plan.manifest.resources.batch_size)
    _write(generated.map_batches(JudgeStage, **judge), layout, conn, engine)


def judge_actors(jcfg: JudgeConfig) -> int:
    """Two judge-stage actors keep judge calls flowing; without a judge (MCQ only) one parses and builds records."""
    return 2 if jcfg.target is not None else 1


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


def write_summary(
    layout: RunLayout, conn: S3Conn, control: ControlStore, retries: dict | None = None
) -> tuple[dict, object]:
    import pyarrow.parquet as pq

    from evalsvc.analysis.agreement import judge_sections
    from evalsvc.analysis.summary import summarize, summary_json
    from evalsvc.store.documents import SummaryDoc
    from evalsvc.store.read import open_run, read_records

    table = summarize(read_records(layout.records, conn))
    sections = judge_sections(open_run(layout.uri, None, conn))  # "judge_health"; "agreement", "calibration"
    doc = SummaryDoc.model_validate({**summary_json(table, run_id=layout.run_id), **sections, "retries": retries})
    doc = doc.to_json()
    control.put_json(layout.summary_json, doc)
    fs, path = filesystem(layout.summary_parquet, conn)
    pq.write_table(table, path, filesystem=fs)
    return doc, table
