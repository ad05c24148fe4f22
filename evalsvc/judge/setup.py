"""Prepare the run's judge: deploy each open judge on Ray Serve (or point at an external URL) and pick rubrics.

Returns a picklable ChatTarget (one judge) or Jury (one target per juror) the judge-stage actors use to reach it.
"""

from __future__ import annotations

from evalsvc.engines import apps
from evalsvc.engines.chat import ChatTarget
from evalsvc.engines.startup import AppStartup
from evalsvc.errors import UserError
from evalsvc.judge.jury import Jury, jury_label
from evalsvc.manifest.judging import Judge
from evalsvc.plan.grid import Plan
from evalsvc.specs.rubric import default_rubric


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
    from evalsvc.specs.rubric import load_rubric

    out = {}
    for kind, ref in rubric_refs(plan).items():
        r = load_rubric(ref)
        if (kind == "rubric") != (r.kind == "rubric"):  # a per-criterion grader and a per-answer rubric never mix
            raise UserError(f"judge.rubrics.{kind}: {r.id!r} is a {r.kind} rubric; benchmarks of kind {kind} need "
                            f"a {kind} rubric (default: {default_rubric(kind)})")  # fmt: skip
        out[kind] = (judge_label(plan), r.id, r.version)
    return out


def prepare(plan: Plan, startup: AppStartup | None = None) -> ChatTarget | Jury | None:
    """The run's judge, deployed when the plan has judged benchmarks or the judge has a calibration slice
    (in `startup`'s background thread when given one)."""
    j = plan.manifest.judge
    if j is None or not (needs_judge(plan) or j.calibration is not None):
        return None
    return prepare_judge(j, cpu=plan.manifest.resources.gpus_per_replica == 0, startup=startup)


def prepare_judge(j: Judge, cpu: bool, startup: AppStartup | None = None) -> ChatTarget | Jury:
    """Deploy (or reach) the judge, or every juror of a jury: each served juror is its own Serve application,
    all deployed in one go so their engines load side by side."""
    named = [(m.name, m, f"{j.app_name}-{m.name}") for m in j.members] or [("", j, j.app_name)]
    check_judge_urls(j)  # a judge URL that does not answer stops the run now, not every judge call later
    targets = apps.deploy([(app, b) for _, b, app in named], role="judge", cpu=cpu, startup=startup)
    pairs = [(name, targets[app]) for name, _, app in named]
    return Jury(tuple(pairs), j.aggregate) if j.members else pairs[0][1]


JUDGE_URL_FIX = ("wait until the judge is up (a KubeRay judge: `kubectl -n evalsvc get rayservice evalsvc-judge` "
                 "shows it Ready, see docs/cluster.md) or fix the URL")


def check_judge_urls(j: Judge) -> None:
    """Every external judge URL (the judge's or a juror's) answers an HTTP request; UserError naming it if not."""
    import os

    from evalsvc.engines.probe import check_answers
    from evalsvc.envref import ENV_REF_RE

    named = [(f"judge.members.{i}.url", m) for i, m in enumerate(j.members)] or [("judge.url", j)]
    for where, b in named:
        if b.url is not None:
            key = os.environ.get(b.api_key[2:-1]) if b.api_key and ENV_REF_RE.match(b.api_key) else None
            check_answers(b.url, where, key, JUDGE_URL_FIX)


def teardown(target: ChatTarget | Jury) -> None:
    """Delete the Serve applications evalsvc deployed for the judge (external URLs are left alone)."""
    apps.teardown(target.targets if isinstance(target, Jury) else [target])
