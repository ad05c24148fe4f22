"""Prepare the run's judge: deploy the open judge on Ray Serve (or point at an external URL) and pick rubrics.

Returns a picklable JudgeTarget the judge-stage actors use to reach it.
"""

from __future__ import annotations

from evalsvc.judge.client import JudgeTarget
from evalsvc.judge.rubric import default_rubric
from evalsvc.manifest.keys import digest, model_fingerprint
from evalsvc.manifest.plan import Plan
from evalsvc.manifest.schema import ENV_REF_RE
from evalsvc.pipeline.cluster import free_port


def needs_judge(plan: Plan) -> bool:
    return any(c.kind != "mcq" for c in plan.cells)


def rubric_refs(plan: Plan) -> dict[str, str]:
    """Benchmark kind → rubric reference, for every judged kind in the plan."""
    chosen = dict(plan.manifest.judge.rubrics) if plan.manifest.judge else {}
    return {c.kind: chosen.get(c.kind) or default_rubric(c.kind) for c in plan.cells if c.kind != "mcq"}


def judge_label(plan: Plan) -> str:
    j = plan.manifest.judge
    if j is None:
        return ""
    if j.model is not None:
        return j.model.source + (f"@{j.model.revision}" if j.model.revision else "")
    return f"{j.url}#{j.model_name}"


def judge_signatures(plan: Plan) -> dict[str, tuple[str, str, str]]:
    """Benchmark kind → (judge model, rubric id, rubric version): a cached judgement is reused only on a match."""
    from evalsvc.judge.rubric import load_rubric

    out = {}
    for kind, ref in rubric_refs(plan).items():
        r = load_rubric(ref)
        out[kind] = (judge_label(plan), r.id, r.version)
    return out


def prepare(plan: Plan, local_ray: bool) -> JudgeTarget | None:
    j = plan.manifest.judge
    if j is None or not needs_judge(plan):
        return None
    if j.url is not None:
        key_env = j.api_key[2:-1] if j.api_key and ENV_REF_RE.match(j.api_key) else None
        return JudgeTarget(model_id=j.model_name or "", url=j.url, api_key_env=key_env, label=judge_label(plan))
    from evalsvc.engines.prepare import resolve_model_source
    from evalsvc.engines.serve_llm import deploy_judge, llm_config

    m = j.model
    cpu = plan.manifest.resources.gpus_per_replica == 0
    engine_args = m.engine_args.model_dump(exclude_none=True)
    fp = model_fingerprint(m.source, m.revision, engine_args, None, None)
    model_id = f"judge-{digest([fp, m.replicas, m.max_replicas, cpu], 8)}"
    cfg = llm_config(model_id, resolve_model_source(m.source), engine_args, m.replicas, m.max_replicas, cpu)
    dep = deploy_judge(j.app_name, cfg, http_port=free_port() if local_ray else None)
    return JudgeTarget(model_id=dep.model_id, app_name=dep.app_name, label=judge_label(plan))


def teardown(target: JudgeTarget) -> None:
    from evalsvc.engines.serve_llm import shutdown_judge

    if target.app_name:
        shutdown_judge(target.app_name)
