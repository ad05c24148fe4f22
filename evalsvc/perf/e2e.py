"""Suite `e2e`: one manifest through `evalsvc run` and through a plain vllm.LLM script (generate, then judge with the
same rubric and guided decoding), side by side: wall time, time to first record, tokens/s excluding start-up.

Both run as fresh processes timed from outside; evalsvc's own start-up timeline (run.json) is printed with them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from evalsvc.errors import SystemError_, UserError
from evalsvc.perf.report import BenchResult, environment, load_average, ratio

TIMEOUT_S = 3600
POLL_S = 0.5
TIMELINE = ("ray_up", "serve_start", "first_generation", "judge_ready", "guard_ready", "judged_apart", "first_record",
            "last_record", "pipeline_done", "end")  # fmt: skip


def baseline_job(plan) -> dict:
    """What the plain script needs: per model its source, engine arguments and rows; the judge's the same."""
    from evalsvc.engines.prepare import resolve_model_source
    from evalsvc.engines.serve_llm import llm_config
    from evalsvc.engines.vllm import engine_kwargs
    from evalsvc.judge import setup as judge_setup
    from evalsvc.judge.core import RUBRIC_FIELDS
    from evalsvc.pipeline.engines import engine_spec

    m = plan.manifest
    for model in plan.models:
        if model.endpoint is not None or model.adapter:
            raise UserError(f"bench e2e: model {model.name!r} is an endpoint or a LoRA adapter; the plain baseline "
                            "runs open checkpoints only")  # fmt: skip
    cpu = m.resources.gpus_per_replica == 0
    models = []
    for model in plan.models:
        rows = [{"key": r["record_key"], "benchmark": r["benchmark"], "strategy": r["strategy"],
                 "benchmark_kind": r["benchmark_kind"], "question": r["question"],
                 "messages": json.loads(r["messages_json"]), "sampling": json.loads(r["sampling"]),
                 **{f: r.get(f) for f in RUBRIC_FIELDS}} for r in plan.rows(model.name)]  # fmt: skip
        spec = engine_spec(plan, model.name)
        models.append({"name": model.name, "source": spec.source, "engine_kwargs": engine_kwargs(spec), "rows": rows})
    return {"cpu": cpu, "models": models, "judge": _judge_job(plan, cpu, resolve_model_source, llm_config, judge_setup)}


def _judge_job(plan, cpu: bool, resolve, llm_config, judge_setup) -> dict | None:
    j = plan.manifest.judge
    if j is None or not judge_setup.needs_judge(plan):
        return None
    if j.members or j.model is None:
        raise UserError("bench e2e: the judge must be one served model (not a jury or a URL) for the plain baseline")
    args = j.model.engine_args.model_dump(exclude_none=True)
    cfg = llm_config("judge", resolve(j.model.source), args, 1, None, cpu)
    return {"source": cfg["model_loading_config"]["model_source"], "engine_kwargs": cfg["engine_kwargs"],
            "rubrics": judge_setup.rubric_refs(plan),
            "settings": {"temperature": j.temperature, "max_tokens": j.max_tokens, "guided": j.guided}}  # fmt: skip


def run(manifest: str = "manifests/quickstart.yaml", repeats: int = 1, out: Path = Path(".evalsvc/bench")) -> BenchResult:
    from evalsvc.manifest.load import load_manifest
    from evalsvc.plan.grid import build_plan
    from evalsvc.store.uri import S3Conn

    m = load_manifest(Path(manifest))
    plan = build_plan(m, S3Conn.from_options(m.output.s3))
    job = baseline_job(plan)
    gens = sum(len(x["rows"]) for x in job["models"])
    result = BenchResult("e2e", {"manifest": manifest, "generations": gens, "repeats": repeats}, env=environment())
    work = out / "e2e-work"
    shutil.rmtree(work, ignore_errors=True)
    env = engine_env(job["cpu"])
    ours, base = [], []
    for i in range(repeats):  # interleaved, so a change in the machine's load hits both sides alike
        ours.append(result.add(**run_evalsvc(Path(manifest), work / f"evalsvc-{i}", env)))
        base.append(result.add(**run_baseline(job, work / f"baseline-{i}", env)))
    headline(result, min(ours, key=lambda r: r["wall_s"]), min(base, key=lambda r: r["wall_s"]))
    shutil.rmtree(work, ignore_errors=True)
    return result


def engine_env(cpu: bool) -> dict[str, str]:
    from evalsvc.engines.vllm import CPU_ENV

    return dict(CPU_ENV) if cpu else {}


def run_evalsvc(manifest: Path, folder: Path, env: dict[str, str]) -> dict:
    """`evalsvc run MANIFEST --json` in a fresh process; the first record is seen appearing in its records folder."""
    folder.mkdir(parents=True, exist_ok=True)
    run_id = f"e2e-{secrets.token_hex(3)}"
    root = folder / "out"
    records = root / "runs" / run_id / "records"
    cmd = [sys.executable, "-m", "evalsvc.cli.main", "run", str(manifest), "--json", "--output", str(root),
           "--run-id", run_id]  # fmt: skip
    load = load_average()[0]
    first, t0 = None, time.time()
    with open(folder / "stdout.json", "w") as so, open(folder / "stderr.txt", "w") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, env={**os.environ, **env})
        while proc.poll() is None:
            if first is None and any(not p.name.startswith(".") for p in records.rglob("*.parquet")):
                first = time.time() - t0
            if time.time() - t0 > TIMEOUT_S:
                proc.kill()
                raise SystemError_(f"bench e2e: evalsvc run did not end within {TIMEOUT_S} s")
            time.sleep(POLL_S)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemError_(f"bench e2e: evalsvc run failed (exit {proc.returncode}): "
                           f"{(folder / 'stderr.txt').read_text()[-1500:]}")  # fmt: skip
    doc = json.loads((folder / "stdout.json").read_text())
    run_doc = json.loads((root / "runs" / run_id / "run.json").read_text())
    return evalsvc_row(doc, run_doc, _record_numbers(records), wall, first, load)


def _record_numbers(records: Path) -> dict:
    import pyarrow.dataset as pads

    t = pads.dataset(str(records), format="parquet", partitioning="hive").to_table(
        columns=["completion_tokens", "parse_ok", "error", "response", "judge_raw"]).to_pydict()  # fmt: skip
    judged = [ok for ok, raw in zip(t["parse_ok"], t["judge_raw"]) if raw is not None]
    return {"records": len(t["error"]), "tokens": sum(x or 0 for x in t["completion_tokens"]),
            "parse_ok": sum(bool(x) for x in t["parse_ok"]), "errors": sum(x is not None for x in t["error"]),
            "answers": sum(x is not None for x in t["response"]), "verdicts": len(judged),
            "verdicts_parsed": sum(bool(x) for x in judged)}  # fmt: skip


def evalsvc_row(doc: dict, run_doc: dict, numbers: dict, wall: float, first: float | None, load: float) -> dict:
    """evalsvc's steady window runs from its first finished answer to its last record (run.json's timeline)."""
    t = run_doc.get("timeline") or {}
    steady = t["last_record"] - t["first_generation"] if "last_record" in t and "first_generation" in t else None
    return {
        "system": "evalsvc run", "state": doc.get("state"), "wall_s": wall, "first_record_s": first,
        "startup_s": wall - steady if steady else None, "steady_s": steady, "tokens": numbers["tokens"],
        "steady_tok_s": numbers["tokens"] / steady if steady else None, "records": numbers["records"],
        "parse_ok": numbers["parse_ok"], "errors": numbers["errors"], "answers": numbers["answers"],
        "verdicts": numbers["verdicts"], "verdicts_parsed": numbers["verdicts_parsed"], "load1": load,
        "timeline": {k: t[k] for k in TIMELINE if k in t},
    }  # fmt: skip


def run_baseline(job: dict, folder: Path, env: dict[str, str]) -> dict:
    """The plain script in a fresh process; its records exist only once both passes are over."""
    folder.mkdir(parents=True, exist_ok=True)
    src, dst = folder / "job.json", folder / "result.json"
    src.write_text(json.dumps(job), encoding="utf-8")
    load = load_average()[0]
    t0 = time.time()
    with open(folder / "stderr.txt", "w") as se:
        proc = subprocess.run([sys.executable, "-m", "evalsvc.perf.e2e_baseline", str(src), str(dst)],
                              stdout=se, stderr=se, env={**os.environ, **env}, timeout=TIMEOUT_S)  # fmt: skip
    wall = time.time() - t0
    if proc.returncode != 0 or not dst.exists():
        raise SystemError_(f"bench e2e: plain vLLM baseline failed (exit {proc.returncode}): "
                           f"{(folder / 'stderr.txt').read_text()[-1500:]}")  # fmt: skip
    return baseline_row(json.loads(dst.read_text()), t0, wall, load)


def baseline_row(out: dict, t0: float, wall: float, load: float) -> dict:
    """The baseline's steady time is its generate and judge passes; imports and engine loads are start-up."""
    marks = out["marks"]
    steady = sum(t - marks[i - 1][1] for i, (name, t) in enumerate(marks) if name.startswith(("generate", "judge")))
    written = dict(marks).get("written")
    return {
        "system": "vllm.LLM script", "state": "succeeded", "wall_s": wall,
        "first_record_s": written - t0 if written else None, "startup_s": wall - steady, "steady_s": steady,
        "tokens": out["completion_tokens"], "steady_tok_s": out["completion_tokens"] / steady if steady else None,
        "records": out["records"], "parse_ok": out["parse_ok"], "errors": 0, "answers": out["records"],
        "verdicts": out["judged"], "verdicts_parsed": out["parse_ok"], "load1": load,
        "phases": {name: round(t - marks[i - 1][1], 2) for i, (name, t) in enumerate(marks) if i},
    }  # fmt: skip


def headline(result: BenchResult, ours: dict, base: dict) -> None:
    """Ratios of the best run of each side; the nested timings move from the rows (a table) to params and notes."""
    timeline, phases = dict(ours.get("timeline") or {}), dict(base.get("phases") or {})
    for row in result.rows:
        row.pop("timeline", None)
        row.pop("phases", None)
    result.params.update(timeline=timeline, baseline_phases=phases)
    result.ratios = {
        "wall evalsvc ÷ baseline": ratio(ours["wall_s"], base["wall_s"]),
        "time to first record evalsvc ÷ baseline": ratio(ours["first_record_s"], base["first_record_s"]),
        "tokens/s excluding start-up evalsvc ÷ baseline": ratio(ours["steady_tok_s"], base["steady_tok_s"]),
    }
    result.notes.append("evalsvc start-up timeline (s from the start of execute, after the CLI's imports): "
                        + " · ".join(f"{k} {v:.1f}" for k, v in timeline.items()))  # fmt: skip
    result.notes.append("baseline phases (s each): " + " · ".join(f"{k} {v:.1f}" for k, v in phases.items()))
    result.notes.append("steady window: evalsvc from its first finished answer to its last record; the baseline its "
                        "generate + judge passes (imports and engine loads excluded); tokens are the candidates'")  # fmt: skip
