"""Prepare the run's judge: deploy each open judge on Ray Serve (or point at an external URL) and pick rubrics.

Returns a picklable JudgeTarget (one judge) or Jury (one target per juror) the judge-stage actors use to reach it.
"""

from __future__ import annotations

from evalsvc.judge.client import JudgeTarget
from evalsvc.judge.jury import Jury, jury_label
from evalsvc.judge.rubric import default_rubric
from evalsvc.manifest.base import Backend
from evalsvc.manifest.judging import Judge
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
    return label_of(j) if j is not None else ""


def label_of(j: Judge) -> str:
    """The judge as recorded in `judge_model`: its backend, or every juror and the aggregate of a jury."""
    if j.members:
        return jury_label([(m.name, m.label) for m in j.members], j.aggregate)
    return j.label


def judge_signatures(plan: Plan) -> dict[str, tuple[str, str, str]]:
    """Benchmark kind → (judge model, rubric id, rubric version): a cached judgement is reused only on a match."""
    from evalsvc.judge.rubric import load_rubric

    out = {}
    for kind, ref in rubric_refs(plan).items():
        r = load_rubric(ref)
        out[kind] = (judge_label(plan), r.id, r.version)
    return out


def prepare(plan: Plan, local_ray: bool) -> JudgeTarget | Jury | None:
    """The run's judge, deployed when the plan has judged benchmarks or the judge has a calibration slice."""
    j = plan.manifest.judge
    if j is None or not (needs_judge(plan) or j.calibration is not None):
        return None
    return prepare_judge(j, cpu=plan.manifest.resources.gpus_per_replica == 0, local_ray=local_ray)


def prepare_judge(j: Judge, cpu: bool, local_ray: bool) -> JudgeTarget | Jury:
    """Deploy (or reach) the judge, or every juror of a jury: each served juror is its own Serve application,
    all deployed in one go so their engines load side by side."""
    named = [(m.name, m, f"{j.app_name}-{m.name}") for m in j.members] or [("", j, j.app_name)]
    check_judge_urls(j)  # a judge URL that does not answer stops the run now, not every judge call later
    served = [(app, _serve_config(b, cpu)) for _, b, app in named if b.model is not None]
    deployed = {}
    if served:
        from evalsvc.engines.serve_llm import deploy_judges

        port = free_port() if local_ray else None  # one HTTP port for every app of this Serve instance
        try:
            deployed = {d.app_name: d for d in deploy_judges(served, http_port=port)}
        except BaseException:
            _delete_apps([app for app, _ in served])  # a juror that did start must not outlive the failed start
            raise
    targets = [(name, _target(b, deployed.get(app))) for name, b, app in named]
    return Jury(tuple(targets), j.aggregate) if j.members else targets[0][1]


JUDGE_URL_FIX = ("wait until the judge is up (a KubeRay judge: `kubectl -n evalsvc get rayservice evalsvc-judge` "
                 "shows it Ready, see docs/cluster.md) or fix the URL")


def check_judge_urls(j: Judge) -> None:
    """Every external judge URL (the judge's or a juror's) answers an HTTP request; UserError naming it if not."""
    import os

    from evalsvc.engines.probe import check_answers

    named = [(f"judge.members.{i}.url", m) for i, m in enumerate(j.members)] or [("judge.url", j)]
    for where, b in named:
        if b.url is not None:
            key = os.environ.get(b.api_key[2:-1]) if b.api_key and ENV_REF_RE.match(b.api_key) else None
            check_answers(b.url, where, key, JUDGE_URL_FIX)


def _serve_config(b: Backend, cpu: bool) -> dict:
    from evalsvc.engines.prepare import resolve_model_source
    from evalsvc.engines.serve_llm import llm_config

    m = b.model
    engine_args = m.engine_args.model_dump(exclude_none=True)
    fp = model_fingerprint(m.source, m.revision, engine_args, None, None)
    place = m.placement.model_dump() if m.placement else None
    model_id = f"judge-{digest([fp, m.replicas, m.max_replicas, cpu] + ([place] if place else []), 8)}"
    return llm_config(model_id, resolve_model_source(m.source), engine_args, m.replicas, m.max_replicas, cpu, place)


def _target(b: Backend, dep) -> JudgeTarget:
    if dep is not None:
        return JudgeTarget(model_id=dep.model_id, app_name=dep.app_name, label=b.label)
    key_env = b.api_key[2:-1] if b.api_key and ENV_REF_RE.match(b.api_key) else None
    return JudgeTarget(model_id=b.model_name or "", url=b.url, api_key_env=key_env, label=b.label)


def teardown(target: JudgeTarget | Jury) -> None:
    """Delete the Serve applications evalsvc deployed for the judge (external URLs are left alone)."""
    from evalsvc.engines.serve_llm import shutdown_judge

    targets = target.targets if isinstance(target, Jury) else [target]
    for t in targets:
        if t.app_name:
            shutdown_judge(t.app_name)


def _delete_apps(names: list[str]) -> None:
    from evalsvc.engines.serve_llm import shutdown_judge

    for name in names:
        try:
            shutdown_judge(name)
        except Exception:  # best effort: the deploy error that got us here is the one to report
            pass
