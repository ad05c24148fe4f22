"""run.json: what a run was (resolved manifest without secrets, plan, versions, engine and judge settings).

Versioned like an eval log: spec (manifest), plan (cells, totals), environment (package versions).
"""

from __future__ import annotations

import platform
from importlib import metadata

from evalsvc import __version__
from evalsvc.judge import setup as judge_setup
from evalsvc.plan.grid import Plan
from evalsvc.redact import redact
from evalsvc.store.documents import Mode, RunDoc
from evalsvc.store.layout import RunLayout


def versions() -> dict[str, str | None]:
    from evalsvc.engines.vllm import vllm_version

    out: dict[str, str | None] = {"evalsvc": __version__, "python": platform.python_version(), "vllm": vllm_version()}
    for dist in ("ray", "torch", "pyarrow", "transformers", "pydantic"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def run_document(plan: Plan, layout: RunLayout, started: str, mode: Mode = "grid") -> RunDoc:
    from evalsvc.specs.rubric import load_rubric

    rubrics = {}
    for kind, ref in judge_setup.rubric_refs(plan).items():
        r = load_rubric(ref)
        rubrics[kind] = {"id": r.id, "version": r.version, "ref": ref}
    engines = {
        e: {"source": plan.model(e).source, "engine_args": plan.model(e).engine_args, "replicas": plan.model(e).replicas}
        for e in plan.engines()
    }
    return RunDoc(
        run_id=layout.run_id,
        output_uri=layout.uri,
        mode=mode,
        state="running",
        started=started,
        manifest=redact(plan.manifest.model_dump(mode="json")),
        plan=plan.to_json(),
        engines=engines,
        sampling={m.name: m.sampling.model_dump() for m in plan.models},
        judge={"model": judge_setup.judge_label(plan), "rubrics": rubrics},
        versions=versions(),
    )
