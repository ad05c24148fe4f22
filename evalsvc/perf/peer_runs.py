"""The peers' sides of `bench peers`, each over the plan's job (evalsvc.perf.e2e.baseline_job):

- lm-evaluation-harness: one invocation per model, benchmark and system prompt (its CLI takes one system
  instruction per call, and each call loads the engine), tasks benchmark × strategy, then a judge pass over its
  logged answers with the same rubric bodies (evalsvc.perf.e2e_baseline, judge only);
- inspect_ai: one eval per model over a vLLM server, scored by a model-graded scorer that sends each answer to the
  judge's vLLM server with the same rubric body and guided decoding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from evalsvc.errors import SystemError_
from evalsvc.perf.e2e_baseline import judge_requests
from evalsvc.perf.peerenv import VLLMServer, lm_eval_tasks, peer_env, vllm_metadata_shim
from evalsvc.specs.judge_parsers import parse
from evalsvc.specs.rubric import load_rubric

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "NO_COLOR": "1"}
PEER_TIMEOUT_S = 1800
SENTINEL = "<<evalsvc-answer>>"  # where the inspect scorer puts the answer into a prebuilt judge body


def split_messages(messages: list[dict]) -> tuple[str | None, str]:
    system = next((m["content"] for m in messages if m["role"] == "system"), None)
    return system, next(m["content"] for m in messages if m["role"] == "user")


def lm_eval_groups(model: dict) -> dict[tuple[str, str | None], list[dict]]:
    """(benchmark, system prompt) → the rows of one lm-eval invocation, each with its task (benchmark × strategy)."""
    groups: dict[tuple[str, str | None], list[dict]] = {}
    for r in model["rows"]:
        system, user = split_messages(r["messages"])
        task = f"evalsvc_{r['benchmark']}_{r['strategy']}".replace("-", "_")
        groups.setdefault((r["benchmark"], system), []).append(
            {"id": r["key"], "task": task, "strategy": r["strategy"], "system": system, "user": user})  # fmt: skip
    return groups


def read_lm_eval_samples(folder: Path) -> dict[str, str]:
    """Row key → answer from lm-eval's --log_samples files (samples_<task>_<time>.jsonl) under `folder`."""
    answers = {}
    for path in sorted(folder.rglob("samples_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                s = json.loads(line)
                resp = s.get("filtered_resps") or s.get("resps") or [""]
                answers[s["doc"]["id"]] = resp[0][0] if isinstance(resp[0], list) else resp[0]
    return answers


def _timed(cmd: list[str], env: dict, log: Path) -> tuple[float, int]:
    t0 = time.monotonic()
    with log.open("ab") as f:
        proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=f, stderr=subprocess.STDOUT, timeout=PEER_TIMEOUT_S)
    return time.monotonic() - t0, proc.returncode


def _tail(log: Path, n: int = 400) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return " ".join(text[-n:].split())


def model_args(model: dict) -> str:
    args = {"pretrained": model["source"], **model["engine_kwargs"]}
    return ",".join(f"{k}={v}" for k, v in args.items() if isinstance(v, (str, int, float, bool)))


def run_lm_eval(job: dict, work: Path, envs: Path, env: dict) -> dict:
    import vllm

    env_dir = peer_env(envs, "lm-eval", ["lm-eval"], see_project=True)
    vllm_metadata_shim(env_dir, str(vllm.__version__))
    work.mkdir(parents=True, exist_ok=True)
    log, answers, calls, t0 = work / "lm-eval.log", {}, 0, time.monotonic()
    for m in job["models"]:
        max_tokens = max(r["sampling"].get("max_tokens", 256) for r in m["rows"])
        for i, ((bench, system), rows) in enumerate(lm_eval_groups(m).items()):
            folder = work / m["name"] / f"{bench}-{i}"
            tasks = lm_eval_tasks(folder / "tasks", rows, max_tokens)
            cmd = [str(env_dir / "bin" / "lm_eval"), "run", "--model", "vllm", "--model_args", model_args(m),
                   "--tasks", ",".join(tasks), "--include_path", str(folder / "tasks"), "--apply_chat_template",
                   "--batch_size", "auto", "--output_path", str(folder / "out"), "--log_samples"]  # fmt: skip
            if system:
                cmd += ["--system_instruction", system]
            _, rc = _timed(cmd, {**OFFLINE, **env}, log)
            calls += 1
            if rc != 0:
                raise SystemError_(f"lm-eval exit {rc}: {_tail(log)}")
            answers.update(read_lm_eval_samples(folder / "out"))
    generated = time.monotonic() - t0
    verdicts = judge_pass(job, answers, work / "judge", env)
    wall = time.monotonic() - t0
    return side_row("lm-eval (vllm backend) + judge pass", job, answers, verdicts, wall,
                    note=f"{calls} lm-eval invocations (each loads its engine) in {generated:.0f} s, "
                         f"then one judge load and pass")  # fmt: skip


def judge_pass(job: dict, answers: dict[str, str], folder: Path, env: dict) -> dict[str, str]:
    """The judge grades `answers` in a fresh process (vllm.LLM, guided decoding): row key → the judge's raw text."""
    folder.mkdir(parents=True, exist_ok=True)
    src, dst = folder / "job.json", folder / "result.json"
    src.write_text(json.dumps({**job, "answers": answers}), encoding="utf-8")
    _, rc = _timed([sys.executable, "-m", "evalsvc.perf.e2e_baseline", str(src), str(dst)], env, folder / "judge.log")
    if rc != 0 or not dst.exists():
        raise SystemError_(f"judge pass exit {rc}: {_tail(folder / 'judge.log')}")
    records = (folder / "records" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["key"]: r["judge_raw"] for r in map(json.loads, records) if r.get("judge_raw") is not None}


INSPECT_SCRIPT = """
import json, sys
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser, GenerateConfig, get_model
from inspect_ai.scorer import Score, mean, scorer
from inspect_ai.solver import generate
job = json.load(open(sys.argv[1]))
ROLES = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
rows = {r["id"]: r for r in job["rows"]}
def chat(messages):
    return [ROLES[m["role"]](content=m["content"]) for m in messages]
@scorer(metrics=[mean()])
def rubric_judge():
    grader = get_model("openai-api/judge/judge")
    async def score(state, target):
        answer, body = state.output.completion, rows[state.sample_id]["judge"]
        if body is None:
            return Score(value=0, answer=answer)
        messages = [{**m, "content": m["content"].replace(job["sentinel"], answer)} for m in body["messages"]]
        extra = {"structured_outputs": body["structured_outputs"]} if body.get("structured_outputs") else None
        config = GenerateConfig(temperature=body["temperature"], max_tokens=body["max_tokens"], extra_body=extra)
        out = await grader.generate(chat(messages), config=config)
        return Score(value=0, answer=answer, explanation=out.completion)
    return score
samples = [Sample(id=r["id"], input=chat(r["messages"]), target="") for r in job["rows"]]
logs = eval(Task(dataset=samples, solver=generate(), scorer=rubric_judge()), model="openai-api/local/candidate",
            display="none", log_dir=job["log_dir"], max_connections=job["max_connections"], temperature=0.0,
            max_tokens=job["max_tokens"], seed=0)
answers = {}
for s in logs[0].samples or []:
    sc = (s.scores or {}).get("rubric_judge")
    answers[s.id] = {"response": s.output.completion if s.output else None, "judge_raw": sc.explanation if sc else None}
json.dump({"status": logs[0].status, "answers": answers}, open(sys.argv[2], "w"))
"""


def inspect_rows(job: dict, model: dict) -> list[dict]:
    """The model's rows for the inspect script: its messages and, for judged rows, the judge body with a sentinel
    where the answer goes (the scorer fills in the answer it gets)."""
    bodies = dict(judge_requests({**job, "models": [model]}, {r["key"]: SENTINEL for r in model["rows"]}))
    return [{"id": r["key"], "messages": r["messages"], "judge": bodies.get(r["key"])} for r in model["rows"]]


def run_inspect(job: dict, work: Path, envs: Path, env: dict) -> dict:
    from evalsvc.engines.apps import free_port

    env_dir = peer_env(envs, "inspect-ai", ["inspect-ai", "openai"])
    work.mkdir(parents=True, exist_ok=True)
    (work / "run_inspect.py").write_text(INSPECT_SCRIPT)
    judge = job["judge"]
    answers: dict[str, dict] = {}
    t0 = time.monotonic()
    with VLLMServer(judge["source"], free_port(), judge["engine_kwargs"], work / "judge-server.log", name="judge",
                    wait=False) as grader:  # fmt: skip
        for m in job["models"]:
            with VLLMServer(m["source"], free_port(), m["engine_kwargs"], work / f"{m['name']}-server.log") as server:
                grader.wait_ready()
                spec = {"rows": inspect_rows(job, m), "log_dir": str(work / "logs" / m["name"]), "sentinel": SENTINEL,
                        "max_tokens": max(r["sampling"].get("max_tokens", 256) for r in m["rows"]),
                        "max_connections": 64}  # fmt: skip
                (work / f"{m['name']}.json").write_text(json.dumps(spec))
                urls = {"LOCAL_BASE_URL": server.base_url, "LOCAL_API_KEY": "unused",
                        "JUDGE_BASE_URL": grader.base_url, "JUDGE_API_KEY": "unused"}  # fmt: skip
                cmd = [str(env_dir / "bin" / "python"), str(work / "run_inspect.py"), str(work / f"{m['name']}.json"),
                       str(work / f"{m['name']}-out.json")]  # fmt: skip
                _, rc = _timed(cmd, {**OFFLINE, **urls}, work / "inspect.log")
                if rc != 0:
                    raise SystemError_(f"inspect exit {rc}: {_tail(work / 'inspect.log')}")
                answers.update(json.loads((work / f"{m['name']}-out.json").read_text())["answers"])
    wall = time.monotonic() - t0
    texts = {k: a["response"] for k, a in answers.items() if a.get("response") is not None}
    verdicts = {k: a["judge_raw"] for k, a in answers.items() if a.get("judge_raw") is not None}
    return side_row("inspect_ai (vLLM servers) + model-graded scorer", job, texts, verdicts, wall,
                    note="a judge server for the whole run, one candidate server per model")  # fmt: skip


def side_row(system: str, job: dict, answers: dict[str, str], verdicts: dict[str, str], wall: float, note: str) -> dict:
    """A peer's row: its wall, answers, judge verdicts and how many of them the rubric's parser reads."""
    parsers = {kind: load_rubric(ref).parser for kind, ref in job["judge"]["rubrics"].items()}
    kinds = {r["key"]: r["benchmark_kind"] for m in job["models"] for r in m["rows"]}
    parsed = sum(parse(parsers[kinds[k]], text).parse_ok for k, text in verdicts.items() if kinds.get(k) in parsers)
    return {"system": system, "wall_s": wall, "answers": len(answers), "verdicts": len(verdicts),
            "verdicts_parsed": parsed, "note": note}  # fmt: skip
