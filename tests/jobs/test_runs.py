"""Run lookup and listing: one state from Ray's job and the run's documents, runs found under a local or S3
output root, joined with (real) Ray JobDetails, and `cancel`'s marking of run.json / status.json."""

from __future__ import annotations

import pytest
from ray.job_submission import JobDetails, JobStatus, JobType

from evalsvc.errors import UserError
from evalsvc.jobs.runs import RunView, derive_state, list_runs, lookup, mark_cancelled, merge_jobs, parse_run
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout


def job(run_id: str, status: JobStatus, output: str | None = None, start_ms: int = 1_795_000_000_000) -> JobDetails:
    meta = {"evalsvc_run_id": run_id, **({"evalsvc_output": output} if output else {})}
    return JobDetails(type=JobType.SUBMISSION, submission_id=run_id, status=status, entrypoint="evalsvc run manifest.yaml",
                      message="m", start_time=start_ms, metadata=meta)


def write_run(store: ControlStore, root: str, run_id: str, state: str, started: str, done: int = 3, total: int = 8) -> RunLayout:
    layout = RunLayout(root, run_id)
    store.put_json(layout.run_json, {"run_id": run_id, "state": state, "started": started,
                                     "plan": {"totals": {"cells": 2, "generations": total}}})
    cells = [{"cell_id": f"c{i}", "model": "tiny", "benchmark": "mcq", "strategy": s, "total": total // 2,
              "done": done // 2 + i, "errors": 0, "parse_failures": 1} for i, s in enumerate(("basic", "safety"))]
    store.put_json(layout.status_json, {"run_id": run_id, "state": state, "done": done, "total": total, "cells": cells})
    return layout


@pytest.mark.parametrize(
    ("job_status", "run_state", "expected"),
    [
        (None, "succeeded", "succeeded"),
        ("STOPPED", "cancelled", "cancelled"),
        ("STOPPED", "running", "cancelled"),  # the driver died before it could write
        ("FAILED", "running", "failed"),
        ("RUNNING", "running", "running"),
        ("SUCCEEDED", "failed", "failed"),  # the run's own verdict wins once written
        ("PENDING", None, "pending"),
        ("STOPPED", None, "cancelled"),
        (None, "running", "running"),
        (None, None, "unknown"),
    ],
)
def test_derive_state(job_status, run_state, expected) -> None:
    assert derive_state(job_status, run_state) == expected


def test_parse_run_forms() -> None:
    assert parse_run("r1", None) == ("r1", None)
    assert parse_run("r1", "s3://b/p") == ("r1", "s3://b/p")
    assert parse_run("s3://b/p/runs/r1/", None) == ("r1", "s3://b/p")
    with pytest.raises(UserError, match="give a run id or a run URI"):
        parse_run("some/dir", None)


def test_lookup_from_the_output_alone(tmp_path) -> None:
    store = ControlStore()
    write_run(store, str(tmp_path), "r1", "running", "2026-11-22T10:00:00+00:00")
    view = lookup("r1", str(tmp_path), None, store)
    assert (view.state, view.progress(), view.cells()) == ("running", (3, 8), 2)
    doc = view.to_json()
    assert doc["output_uri"] == f"{tmp_path}/runs/r1" and [c["done"] for c in doc["cell_progress"]] == [1, 2]
    assert lookup(f"{tmp_path}/runs/r1", None, None, store).run_id == "r1"


def test_lookup_of_an_unknown_run_names_where_it_looked(tmp_path) -> None:
    with pytest.raises(UserError, match=f"run 'nope': not found \\({tmp_path}/runs/nope\\)"):
        lookup("nope", str(tmp_path), None, ControlStore())
    with pytest.raises(UserError, match="no output root"):
        lookup("nope", None, None, ControlStore())


@pytest.mark.slow  # a real S3 server
def test_list_runs_on_s3_and_merge_with_jobs(s3, s3_uri, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in s3.env().items():
        monkeypatch.setenv(k, v)
    store = ControlStore(s3.conn)
    write_run(store, s3_uri, "old", "succeeded", "2026-11-20T10:00:00+00:00", done=8)
    write_run(store, s3_uri, "new", "running", "2026-11-22T10:00:00+00:00")
    views = list_runs(s3_uri, store)
    assert sorted(v.run_id for v in views) == ["new", "old"]
    jobs = [job("new", JobStatus.STOPPED, s3_uri), job("queued", JobStatus.PENDING, s3_uri, start_ms=1_895_000_000_000),
            job("elsewhere", JobStatus.RUNNING, "s3://evalsvc-test/other"), job("x", JobStatus.RUNNING)]
    jobs[-1].metadata = {}  # a job someone submitted without evalsvc
    merged = merge_jobs(views, jobs, s3_uri, store)
    assert [v.run_id for v in merged] == ["queued", "new", "old"]  # newest first
    assert [v.state for v in merged] == ["pending", "cancelled", "succeeded"]
    assert merged[1].job["status"] == "STOPPED" and merged[2].job is None


def test_list_runs_local_ignores_stray_entries(tmp_path) -> None:
    store = ControlStore()
    write_run(store, str(tmp_path), "r1", "failed", "2026-11-22T10:00:00+00:00")
    (tmp_path / "runs" / "notes.txt").write_text("x")
    assert [v.run_id for v in list_runs(str(tmp_path), store)] == ["r1"]
    assert list_runs(str(tmp_path / "empty"), store) == []


def test_mark_cancelled(tmp_path) -> None:
    store = ControlStore()
    running = write_run(store, str(tmp_path), "run", "running", "t0")
    assert mark_cancelled(store, running, "t1")
    info, status = store.get_json(running.run_json), store.get_json(running.status_json)
    assert (info["state"], info["cancelled"], info["started"], status["state"], status["done"]) == ("cancelled", "t1", "t0", "cancelled", 3)
    died = write_run(store, str(tmp_path), "died", "failed", "t0")  # the stop signal's SystemExit wrote "failed"
    assert mark_cancelled(store, died, "t1") and store.get_json(died.run_json)["state"] == "cancelled"
    done = write_run(store, str(tmp_path), "done", "succeeded", "t0")
    assert not mark_cancelled(store, done, "t1") and store.get_json(done.run_json)["state"] == "succeeded"
    never = RunLayout(str(tmp_path), "never-started")
    assert mark_cancelled(store, never, "t1")
    assert store.get_json(never.run_json)["state"] == "cancelled" and store.get_json(never.status_json) is None


def test_view_without_documents_uses_the_plan_totals() -> None:
    v = RunView("r", info={"state": "running", "plan": {"totals": {"cells": 4, "generations": 40}}})
    assert (v.progress(), v.cells()) == ((0, 40), 4)
    assert RunView("r").progress() is None
