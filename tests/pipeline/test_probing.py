"""Which probes a run scores (no Ray): judge.probes per judged kind, off at 0, kept on a resumed run."""

from __future__ import annotations

from evalsvc.judge.probe_run import PROBE_SCHEMA, write_probes
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.probing import run_probes_for
from evalsvc.plan.grid import build_plan


def plan(tmp_path, probes: int | None = None, benchmarks=None):
    judge = {"url": "http://127.0.0.1:9/v1", "model_name": "j"} | ({"probes": probes} if probes is not None else {})
    return build_plan(validate_manifest({
        "name": "p", "models": [{"name": "m", "source": "org/m"}],
        "benchmarks": benchmarks or [{"name": "mh", "dataset": "medharm"}, {"name": "mg", "dataset": "medguard"}],
        "strategies": ["basic"], "judge": judge, "output": {"uri": str(tmp_path / "out")},
    }))  # fmt: skip


def test_the_default_scores_sixteen_per_judged_kind(tmp_path):
    run = run_probes_for(plan(tmp_path), ["high_risk"], str(tmp_path / "run"), None)
    assert len(run.probes) == 16 and {p.kind for p in run.probes} == {"high_risk"}
    assert run.note == {"per_kind": 16, "counts": {"high_risk": 16}}


def test_zero_turns_them_off_and_says_so(tmp_path):
    run = run_probes_for(plan(tmp_path, probes=0), ["high_risk"], str(tmp_path / "run"), None)
    assert run.probes == [] and run.note["off"] is True


def test_a_resumed_run_keeps_the_probes_it_scored(tmp_path):
    run_uri = str(tmp_path / "run")
    write_probes(PROBE_SCHEMA.empty_table(), run_uri)
    run = run_probes_for(plan(tmp_path), ["high_risk"], run_uri, None)
    assert run.probes == [] and run.note["kept"] and run.note["file"].endswith("probes/judgements.parquet")
