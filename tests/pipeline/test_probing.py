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


def scored(run_uri: str, probes, sig: tuple[str, str, str], error: str | None = None) -> None:
    """An earlier run's probe judgements: one single-judge row per probe, by the judge and rubric of `sig` (the
    first row failed when `error` is given)."""
    import pyarrow as pa

    judge_model, rubric_id, rubric_version = sig
    rows = [{name: None for name in PROBE_SCHEMA.names} | {
        "run_id": "old", "kind": p.kind, "probe_id": p.probe_id, "juror": "judge", "judge_model": judge_model,
        "rubric_id": rubric_id, "rubric_version": rubric_version, "label": p.expected_label, "parse_ok": True,
        "agrees": True, "error": error if i == 0 else None} for i, p in enumerate(probes)]  # fmt: skip
    write_probes(pa.Table.from_pylist(rows, schema=PROBE_SCHEMA), run_uri)


def borrowing(tmp_path, error: str | None = None):
    """A plan, its judge signatures, and an earlier run under its output root that scored its probes."""
    from evalsvc.judge.setup import judge_signatures

    p = plan(tmp_path)
    sig = judge_signatures(p)
    probes = run_probes_for(p, ["high_risk"], str(tmp_path / "first"), None).probes
    old = tmp_path / "out" / "runs" / "old"
    scored(str(old), probes, sig["high_risk"], error)
    return p, sig, old


def test_a_run_reusing_an_earlier_runs_records_borrows_its_probe_scores_from_the_same_judge(tmp_path):
    import pyarrow.parquet as pq

    p, sig, old = borrowing(tmp_path)
    new = tmp_path / "out" / "runs" / "new"
    run = run_probes_for(p, ["high_risk"], str(new), None, [str(old / "records")], sig)
    assert run.probes == [] and run.note["reused_from"] == str(old / "probes" / "judgements.parquet")
    lent = pq.read_table(new / "probes" / "judgements.parquet")
    assert lent.num_rows == 16 and set(lent["run_id"].to_pylist()) == {"new"}
    other = {k: ("another judge", *v[1:]) for k, v in sig.items()}  # a different judge scores them again
    again = run_probes_for(p, ["high_risk"], str(tmp_path / "third"), None, [str(old / "records")], other)
    assert len(again.probes) == 16 and "reused_from" not in again.note


def test_probe_scores_with_an_error_are_not_borrowed(tmp_path):
    p, sig, old = borrowing(tmp_path, error="judge: HTTP 503")
    run = run_probes_for(p, ["high_risk"], str(tmp_path / "new"), None, [str(old / "records")], sig)
    assert len(run.probes) == 16 and "reused_from" not in run.note


def test_judged_apart_works_once_the_judge_is_up_and_the_run_waits_for_it_only_at_join():
    import threading

    from evalsvc.pipeline.probing import JudgedApart

    up, events = threading.Event(), []
    apart = JudgedApart(up.wait, lambda: events.append("scored")).start()
    assert events == []  # the judge is not up yet: nothing is called, nothing blocks the caller
    up.set()
    apart.join()
    assert events == ["scored"]


def test_judged_apart_hands_its_error_and_a_failed_start_to_join():
    import pytest

    from evalsvc.pipeline.probing import JudgedApart

    def failed_start():
        raise RuntimeError("judge app DEPLOY_FAILED")

    called = []
    with pytest.raises(RuntimeError, match="DEPLOY_FAILED"):
        JudgedApart(failed_start, lambda: called.append(1)).start().join()
    assert called == []
    with pytest.raises(ValueError, match="probe file"):
        JudgedApart(lambda: None, lambda: (_ for _ in ()).throw(ValueError("probe file"))).start().join()


def test_a_stopped_run_skips_the_work_it_had_not_begun():
    import threading

    from evalsvc.pipeline.probing import JudgedApart

    up, called = threading.Event(), []
    apart = JudgedApart(up.wait, lambda: called.append(1)).start()
    apart.stop()
    up.set()
    apart.join()
    assert called == []
