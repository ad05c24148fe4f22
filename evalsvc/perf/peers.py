"""Suite `peers`: one judged grid through `evalsvc run`, through lm-evaluation-harness plus a judge pass, and through
inspect_ai with a model-graded scorer on the same judge; each side's wall end to end, and the ratios.

Every side gets what the plan renders: the same prompts (system and user), greedy answers, token budget and judge
requests (evalsvc's rubric bodies, with guided decoding). Each peer is pip-installed into its own throwaway env under
--out; a peer that cannot run the workload says why in its row.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evalsvc.errors import UserError
from evalsvc.perf import e2e
from evalsvc.perf.peer_runs import run_inspect, run_lm_eval
from evalsvc.perf.report import BenchResult, environment, ratio

PEERS = ("lm-eval", "inspect-ai")
MANIFEST = "manifests/peers.yaml"
GOAL = 0.5  # evalsvc's wall at most half the best peer's


def check_job(job: dict) -> None:
    """What every side can run alike: one served judge, and one greedy answer per row."""
    if job["judge"] is None:
        raise UserError("bench peers: the manifest needs judge.model (one served judge), which every side then runs")
    for m in job["models"]:
        temperature = max(r["sampling"].get("temperature", 0) for r in m["rows"])
        if temperature:
            raise UserError(f"bench peers: model {m['name']!r} samples at temperature {temperature}; the peers' "
                            "answers are greedy: set sampling.temperature: 0")  # fmt: skip


def shape(plan, job: dict) -> dict:
    rows = [r for m in job["models"] for r in m["rows"]]
    return {"models": len(job["models"]), "benchmarks": len({r["benchmark"] for r in rows}),
            "strategies": len({r["strategy"] for r in rows}), "generations": len(rows),
            "judged": sum(r["benchmark_kind"] in job["judge"]["rubrics"] for r in rows)}  # fmt: skip


def run(manifest: str = MANIFEST, peers: tuple[str, ...] = PEERS, out: Path = Path(".evalsvc/bench")) -> BenchResult:
    from evalsvc.manifest.load import load_manifest
    from evalsvc.plan.grid import build_plan
    from evalsvc.store.uri import S3Conn

    unknown = sorted(set(peers) - set(PEERS))
    if unknown:
        raise UserError(f"--peers: {', '.join(unknown)} is not a peer; choose from {', '.join(PEERS)}")
    m = load_manifest(Path(manifest))
    plan = build_plan(m, S3Conn.from_options(m.output.s3))
    job = e2e.baseline_job(plan)
    check_job(job)
    result = BenchResult("peers", {"manifest": manifest, **shape(plan, job), "peers": list(peers)}, env=environment())
    work = out / "peers"
    shutil.rmtree(work, ignore_errors=True)
    env = e2e.engine_env(job["cpu"])
    ours = result.add(**evalsvc_side(e2e.run_evalsvc(Path(manifest), work / "evalsvc", env)))
    for peer in peers:
        runner = {"lm-eval": run_lm_eval, "inspect-ai": run_inspect}[peer]
        try:
            result.add(**runner(job, work / peer, out / "peers-envs", env))
        except Exception as e:  # a peer that cannot run is a measured outcome, not a crash of the suite
            result.add(system=peer, note=f"failed: {type(e).__name__}: {str(e)[:400]}")
    summarise(result, ours)
    return result


def evalsvc_side(row: dict) -> dict:
    return {"system": "evalsvc run", "wall_s": row["wall_s"], "answers": row["answers"], "verdicts": row["verdicts"],
            "verdicts_parsed": row["verdicts_parsed"], "first_record_s": row["first_record_s"],
            "note": f"state {row['state']}, {row['errors']} error records"}  # fmt: skip


def summarise(result: BenchResult, ours: dict) -> None:
    """evalsvc's wall over each peer's that finished, and over the best of them (the goal: at most GOAL)."""
    walls = {r["system"]: r["wall_s"] for r in result.rows[1:] if r.get("wall_s")}
    result.ratios = {f"wall evalsvc ÷ {name}": ratio(ours["wall_s"], wall) for name, wall in walls.items()}
    best = min(walls.values(), default=None)
    result.ratios["wall evalsvc ÷ best peer"] = ratio(ours["wall_s"], best)
    result.notes.append(f"goal: evalsvc's wall ≤ {GOAL}× the best peer's; every side's wall is end to end "
                        "(imports, engine and server loads, generation, judging)")  # fmt: skip
