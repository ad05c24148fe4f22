"""Reach the run's guard models: deploy each served guardrail on Ray Serve (app `guard-<name>`) or point at its URL.

Returns the arms with their targets set (picklable, sent to the guard-stage actors); `teardown` removes the apps.
"""

from __future__ import annotations

from dataclasses import replace

from typing import TYPE_CHECKING

from evalsvc.guard.arms import Arm
from evalsvc.guard.stage import GuardConfig
from evalsvc.judge.client import JudgeTarget
from evalsvc.manifest.judging import Guardrail
from evalsvc.manifest.keys import digest, model_fingerprint
from evalsvc.manifest.schema import ENV_REF_RE, Manifest

if TYPE_CHECKING:
    from evalsvc.manifest.plan import Plan
    from evalsvc.pipeline.reuse import ReusePlan


def prepare(plan: Plan, reuse: ReusePlan, local_ray: bool) -> GuardConfig | None:
    """The guard stage's config: None without a guardrail axis; guards are deployed only when a call is due."""
    if not plan.arms:
        return None
    arms = deploy_guards(plan.manifest, plan.arms, local_ray) if reuse.guarded_rows else tuple(plan.arms)
    return GuardConfig(arms=arms, done=frozenset(reuse.arms_done))


def app_name(guardrail: str) -> str:
    return f"guard-{guardrail}"


def deploy_guards(manifest: Manifest, arms: list[Arm], local_ray: bool) -> tuple[Arm, ...]:
    """Every guarded arm with its target: a Serve deployment (served model) or an external URL."""
    by_name = {g.name: g for g in manifest.guardrails}
    cpu = manifest.resources.gpus_per_replica == 0
    return tuple(replace(a, target=_target(by_name[a.name], cpu, local_ray)) if a.guarded else a for a in arms)


def _target(g: Guardrail, cpu: bool, local_ray: bool) -> JudgeTarget:
    if g.url is not None:
        key_env = g.api_key[2:-1] if g.api_key and ENV_REF_RE.match(g.api_key) else None
        return JudgeTarget(model_id=g.model_name or "", url=g.url, api_key_env=key_env, label=g.label)
    from evalsvc.engines.prepare import resolve_model_source
    from evalsvc.engines.serve_llm import deploy_judge, llm_config
    from evalsvc.pipeline.cluster import free_port

    m = g.model
    assert m is not None  # the manifest requires `model` or `url` for every guardrail but `none`
    engine_args = m.engine_args.model_dump(exclude_none=True)
    fp = model_fingerprint(m.source, m.revision, engine_args, None, None)
    place = m.placement.model_dump() if m.placement else None
    model_id = f"guard-{digest([fp, m.replicas, m.max_replicas, cpu] + ([place] if place else []), 8)}"
    cfg = llm_config(model_id, resolve_model_source(m.source), engine_args, m.replicas, m.max_replicas, cpu, place)
    dep = deploy_judge(app_name(g.name), cfg, http_port=free_port() if local_ray else None)
    return JudgeTarget(model_id=dep.model_id, app_name=dep.app_name, label=g.label)


def teardown(arms: tuple[Arm, ...]) -> None:
    """Remove the Serve apps of the served guards (URL guards have nothing to remove)."""
    from evalsvc.engines.serve_llm import shutdown_judge

    for a in arms:
        if a.target is not None and a.target.app_name:
            shutdown_judge(a.target.app_name)
