"""The baseline for `efficiency`: plain `vllm.LLM.chat` on the same conversations and sampling, in a clean subprocess.

`python -m evalsvc.perf.direct IN.json OUT.json` times import, engine load and generation separately.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from evalsvc.errors import SystemError_


def direct_job(plan, engine_kwargs: dict) -> dict:
    """The subprocess's input: every conversation and sampling dict of the plan's rows, in row order."""
    rows = [r for m in plan.models for r in plan.rows(m.name)]
    return {
        "model": plan.models[0].source,
        "engine_kwargs": engine_kwargs,
        "messages": [json.loads(r["messages_json"]) for r in rows],
        "sampling": [json.loads(r["sampling"]) for r in rows],
    }


def run_direct(job: dict, workdir: Path, env: dict[str, str], timeout_s: float = 3600) -> dict:
    """Run the job in a fresh Python (its own vLLM, no Ray) and return its timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    src, dst = workdir / "direct-in.json", workdir / "direct-out.json"
    src.write_text(json.dumps(job), encoding="utf-8")
    dst.unlink(missing_ok=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "evalsvc.perf.direct", str(src), str(dst)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0 or not dst.exists():
        raise SystemError_(f"plain vLLM baseline failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    out = json.loads(dst.read_text(encoding="utf-8"))
    out["process_wall_s"] = wall
    return out


def _generate(job: dict) -> dict:
    t0 = time.monotonic()
    from vllm import LLM, SamplingParams

    t_import = time.monotonic()
    # Per-request stats on, as ray.data.llm's engine has them: they time the engine core the same way there.
    llm = LLM(model=job["model"], disable_log_stats=False, **job["engine_kwargs"])
    t_load = time.monotonic()
    params = [SamplingParams(**s) for s in job["sampling"]]
    outputs = llm.chat(job["messages"], params, use_tqdm=False)
    t_gen = time.monotonic()
    queued = [o.metrics.queued_ts for o in outputs if getattr(o, "metrics", None) and o.metrics.queued_ts]
    last = [o.metrics.last_token_ts for o in outputs if getattr(o, "metrics", None) and o.metrics.last_token_ts]
    return {
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "generate_s": t_gen - t_load,
        "engine_s": (max(last) - min(queued)) if queued and last else None,
        "requests": len(outputs),
        "prompt_tokens": sum(len(o.prompt_token_ids or []) for o in outputs),
        "completion_tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
    }


def main(argv: list[str]) -> int:
    src, dst = Path(argv[1]), Path(argv[2])
    result = _generate(json.loads(src.read_text(encoding="utf-8")))
    dst.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":  # vLLM's engine processes re-import the main module
    sys.exit(main(sys.argv))
