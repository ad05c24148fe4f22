"""Suite `peers`: the same model folder, items and strategies through evalsvc, lm-evaluation-harness and inspect_ai.

Each peer is pip-installed into its own throwaway env under --out; what cannot run the exact workload says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from evalsvc.engines.vllm import CPU_ENV
from evalsvc.perf import grid
from evalsvc.perf.peerenv import VLLMServer, lm_eval_tasks, peer_env, vllm_metadata_shim
from evalsvc.perf.report import BenchResult, environment, ratio

PEERS = ("lm-eval", "inspect-ai")
ENGINE = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_COLOR": "1"}
PEER_TIMEOUT_S = 1800

INSPECT_SCRIPT = """
import json, sys
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageSystem, ChatMessageUser
from inspect_ai.solver import generate
job = json.load(open(sys.argv[1]))
roles = {"system": ChatMessageSystem, "user": ChatMessageUser}
samples = [Sample(id=r["id"], input=[roles[m["role"]](content=m["content"]) for m in r["messages"]], target="")
           for r in job["rows"]]
logs = eval(Task(dataset=samples, solver=generate()), model="openai-api/local/candidate", display="none",
            log_dir=job["log_dir"], max_connections=job["max_connections"], temperature=0.0,
            max_tokens=job["max_tokens"], seed=0)
done = sum(1 for s in (logs[0].samples or []) if s.output and s.output.completion is not None)
json.dump({"status": logs[0].status, "samples": done}, open(sys.argv[2], "w"))
"""


@dataclass(frozen=True)
class PeerJob:
    model: str
    model_dir: str
    rows: list[dict]
    max_tokens: int
    work: Path  # this peer's scratch folder
    envs: Path  # where the throwaway virtualenvs live (shared by models)
    base: float  # evalsvc's items/s on the same workload


def workload(plan) -> list[dict]:
    """The plan's rows as peers take them: id, strategy, full messages, and the system/user split."""
    out = []
    for r in plan.rows(plan.models[0].name):
        messages = json.loads(r["messages_json"])
        system = next((m["content"] for m in messages if m["role"] == "system"), None)
        user = next(m["content"] for m in messages if m["role"] == "user")
        out.append({"id": f"{r['item_id']}|{r['strategy']}", "strategy": r["strategy"], "messages": messages,
                    "system": system, "user": user})  # fmt: skip
    return out


def _timed(cmd: list[str], env: dict, log: Path) -> tuple[float, int]:
    t0 = time.monotonic()
    with log.open("ab") as f:
        proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT, timeout=PEER_TIMEOUT_S)
    return time.monotonic() - t0, proc.returncode


def _tail(log: Path, n: int = 400) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return " ".join(text[-n:].split())


def lm_eval_runs(env_dir: Path, backend: str, model_args: str, rows: list[dict], max_tokens: int, work: Path,
                 extra_env: dict) -> tuple[float, str | None]:  # fmt: skip
    """lm-eval over the workload: one invocation (one model load) per distinct system prompt, as its CLI allows."""
    names = dict(zip(sorted({r["strategy"] for r in rows}), lm_eval_tasks(work / "tasks", rows, max_tokens)))
    by_system: dict[str | None, list[str]] = {}
    for r in rows:
        tasks = by_system.setdefault(r["system"], [])
        if names[r["strategy"]] not in tasks:
            tasks.append(names[r["strategy"]])
    total, log = 0.0, work / f"lm-eval-{backend}.log"
    for system, tasks in by_system.items():
        cmd = [str(env_dir / "bin" / "lm_eval"), "run", "--model", backend, "--model_args", model_args, "--tasks",
               ",".join(tasks), "--include_path", str(work / "tasks"), "--apply_chat_template", "--batch_size", "auto",
               "--output_path", str(work / f"out-{backend}"), "--log_samples"]  # fmt: skip
        if system:
            cmd += ["--system_instruction", system]
        wall, rc = _timed(cmd, {**OFFLINE, **extra_env}, log)
        if rc != 0:
            return total + wall, f"exit {rc}: {_tail(log)}"
        total += wall
    return total, None


def run_lm_eval(result: BenchResult, job: PeerJob) -> None:
    import vllm

    model, rows, base = job.model, job.rows, job.base
    env_dir = peer_env(job.envs, "lm-eval", ["lm-eval"], see_project=True)
    vllm_metadata_shim(env_dir, str(vllm.__version__))
    args = f"pretrained={job.model_dir},dtype=float32,enforce_eager=True,max_model_len=2048"
    wall, err = lm_eval_runs(env_dir, "vllm", args, rows, job.max_tokens, job.work / "vllm", CPU_ENV)
    result.add(model=model, system="lm-eval (vllm backend, +cpu shim)", items=len(rows), wall_s=wall,
               items_s=None if err else len(rows) / wall, vs_evalsvc=None if err else ratio(len(rows) / wall, base),
               note=err or "2 invocations (one per system prompt), each loads the engine")  # fmt: skip
    if err:  # the closest comparable run: the same prompts on transformers
        wall, err = lm_eval_runs(env_dir, "hf", f"pretrained={job.model_dir},dtype=float32", rows, job.max_tokens,
                                 job.work / "hf", {})  # fmt: skip
        result.add(model=model, system="lm-eval (hf backend)", items=len(rows), wall_s=wall,
                   items_s=None if err else len(rows) / wall, vs_evalsvc=None if err else ratio(len(rows) / wall, base),
                   note=err or "transformers, not vLLM: a different engine")  # fmt: skip


def run_inspect(result: BenchResult, job: PeerJob) -> None:
    from evalsvc.engines.apps import free_port

    model, rows, max_tokens, work, base = job.model, job.rows, job.max_tokens, job.work, job.base
    env_dir = peer_env(job.envs, "inspect-ai", ["inspect-ai", "openai"])
    work.mkdir(parents=True, exist_ok=True)
    (work / "job.json").write_text(json.dumps({"rows": rows, "log_dir": str(work / "logs"), "max_tokens": max_tokens,
                                                "max_connections": 64}))  # fmt: skip
    (work / "run_inspect.py").write_text(INSPECT_SCRIPT)
    with VLLMServer(job.model_dir, free_port(), ENGINE, work / "vllm-server.log") as server:
        env = {**OFFLINE, "LOCAL_BASE_URL": server.base_url, "LOCAL_API_KEY": "unused"}
        cmd = [str(env_dir / "bin" / "python"), str(work / "run_inspect.py"), str(work / "job.json"), str(work / "res.json")]
        wall, rc = _timed(cmd, env, work / "inspect.log")
    done = json.loads((work / "res.json").read_text())["samples"] if rc == 0 else 0
    e2e = wall + (server.startup_s or 0)
    result.add(model=model, system="inspect_ai (openai-api → vLLM server)", items=len(rows), wall_s=e2e,
               items_s=done / e2e if done else None, vs_evalsvc=ratio(done / e2e, base) if done else None,
               startup_s=server.startup_s, steady_items_s=done / wall if done else None,
               note=f"exit {rc}: {_tail(work / 'inspect.log')}" if rc else f"{done} samples")  # fmt: skip


def run(model: str = "tiny,smollm2", n: int = 32, max_tokens: int = 32, peers: tuple[str, ...] = PEERS,
        out: Path = Path(".evalsvc/bench")) -> BenchResult:  # fmt: skip
    from evalsvc.engines.prepare import prepare
    from evalsvc.pipeline.cluster import connect

    result = BenchResult("peers", {"models": model, "generations": n, "max_tokens": max_tokens, "peers": list(peers)},
                         env=environment())  # fmt: skip
    connect(None)
    for name in [m.strip() for m in model.split(",") if m.strip()]:
        model_dir = str(prepare(name))
        plan = grid.bench_plan(model_dir, [grid.msb(limit=grid.items_for(n, 4))], max_tokens=max_tokens,
                               engine_args={"max_model_len": 2048})  # fmt: skip
        rows, work = workload(plan), out / "peers" / name
        shutil.rmtree(work / "evalsvc", ignore_errors=True)
        spec = grid.spec_for(plan)
        wall = grid.run_pipeline(plan, grid.vllm_stage(spec), str(work / "evalsvc"))
        base = len(rows) / wall
        system = f"evalsvc (Ray Data + vLLM, {spec.batch_size}x{spec.max_concurrent_batches})"
        result.add(model=name, system=system, items=len(rows), wall_s=wall, items_s=base,
                   vs_evalsvc=1.0)  # fmt: skip
        for peer in peers:
            runner = {"lm-eval": run_lm_eval, "inspect-ai": run_inspect}[peer]
            try:
                runner(result, PeerJob(name, model_dir, rows, max_tokens, work / peer, out / "peers-envs", base))
            except Exception as e:  # a peer that cannot run is a measured outcome, not a crash of the suite
                result.add(model=name, system=peer, items=len(rows), note=f"failed: {type(e).__name__}: {str(e)[:300]}")
    result.ratios = {f"{r['model']}: {r['system']} items/s ÷ evalsvc": r.get("vs_evalsvc") for r in result.rows
                     if not r["system"].startswith("evalsvc")}  # fmt: skip
    return result
