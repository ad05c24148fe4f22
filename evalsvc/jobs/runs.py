"""Find runs and tell their state: Ray's job status joined with the run's own run.json / status.json.

Either side may be missing: the cluster forgets jobs when it is replaced, and a job may not have written yet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalsvc.errors import EvalsvcError, SystemError_, UserError
from evalsvc.jobs.client import Jobs
from evalsvc.jobs.submission import META_OUTPUT, META_RUN_ID
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RUN_ID_RE, RunLayout, resolve_run
from evalsvc.store.uri import S3Conn, boto3_client, is_s3, join, split_s3

RUN_STATES = ("succeeded", "failed", "cancelled")  # terminal states a run.json can hold
JOB_TO_STATE = {"PENDING": "pending", "RUNNING": "running", "SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "cancelled"}


@dataclass
class RunView:
    run_id: str
    layout: RunLayout | None = None  # where the run's objects are, when the output root is known
    job: dict | None = None  # the Ray job (status, message, times), when the cluster knows it
    info: dict | None = None  # run.json
    status: dict | None = None  # status.json
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        return derive_state(self.job and self.job["status"], self.info and self.info.get("state"))

    @property
    def started(self) -> str | None:
        return (self.info or {}).get("started") or (self.job or {}).get("start_time")

    def progress(self) -> tuple[int, int] | None:
        if self.status:
            return int(self.status.get("done", 0)), int(self.status.get("total", 0))
        totals = ((self.info or {}).get("plan") or {}).get("totals")
        return (0, int(totals["generations"])) if totals else None

    def cells(self) -> int | None:
        if self.status:
            return len(self.status.get("cells", []))
        totals = ((self.info or {}).get("plan") or {}).get("totals")
        return int(totals["cells"]) if totals else None

    def to_json(self) -> dict:
        done_total = self.progress()
        return {
            "run_id": self.run_id,
            "state": self.state,
            "run_state": (self.info or {}).get("state"),
            "job": self.job,
            "output_uri": self.layout.uri if self.layout else None,
            "started": self.started,
            "finished": (self.info or {}).get("finished"),
            "cells": self.cells(),
            "done": done_total[0] if done_total else None,
            "total": done_total[1] if done_total else None,
            "cell_progress": (self.status or {}).get("cells", []),
            "replicas": (self.status or {}).get("replicas", []),  # while running: each model replica's node
            "retries": (self.status or {}).get("retries") or (self.info or {}).get("retries") or {},
            "notes": self.notes,
        }


def derive_state(job_status: str | None, run_state: str | None) -> str:
    """One state for a run: what the run wrote, corrected by Ray when the driver died before it could write."""
    if run_state in RUN_STATES:
        return run_state
    job_state = JOB_TO_STATE.get(str(job_status)) if job_status else None
    if run_state == "running":
        # A stopped or crashed driver leaves "running" behind; Ray knows better.
        return job_state if job_state in ("failed", "cancelled") else "running"
    return job_state or run_state or "unknown"


def job_dict(job: Any) -> dict:
    """The parts of a Ray JobDetails a user reads (times as ISO 8601 UTC)."""
    return {
        "submission_id": job.submission_id,
        "status": str(job.status),
        "message": job.message,
        "start_time": _iso(job.start_time),
        "end_time": _iso(job.end_time),
        "entrypoint": job.entrypoint,
        "metadata": dict(job.metadata or {}),
    }


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else None


def parse_run(run: str, root: str | None) -> tuple[str, str | None]:
    """(run id, output root or None) from RUN: a run URI, or a run id whose root may come from the job later."""
    if "/runs/" in run.rstrip("/") or root:
        layout = resolve_run(run, root)
        return layout.run_id, layout.root
    if not RUN_ID_RE.match(run):
        raise UserError(f"RUN {run!r}: give a run id or a run URI ending in /runs/<run_id>")
    return run, None


def lookup(run: str, root: str | None, jobs: Jobs | None, store: ControlStore) -> RunView:
    """The run's job (if `jobs`) and documents (if the output root is known from RUN, --output or the job)."""
    run_id, root = parse_run(run, root)
    view = RunView(run_id)
    if jobs is not None:
        try:
            job = jobs.info(run_id)
        except SystemError_ as e:
            if root is None:
                raise
            view.notes.append(f"{e.message}; showing what the output holds")
            job = None
        if job is None:
            view.notes.append(f"the cluster at {jobs.address} has no job {run_id!r}")
        else:
            view.job = job_dict(job)
            if root is None and view.job["metadata"].get(META_OUTPUT):
                view.layout = RunLayout(view.job["metadata"][META_OUTPUT], run_id)
                read_quietly(store, view)  # the job's output may not be readable from here: the job still answers
    if root:
        view.layout = RunLayout(root, run_id)
        view.info, view.status = read_docs(store, view.layout)
    if view.job is None and view.info is None and view.status is None:
        where = view.layout.uri if view.layout else "no output root (pass --output, set EVALSVC_OUTPUT, or --address)"
        raise UserError(f"run {run_id!r}: not found ({where}); check the run id, --output and --address")
    return view


def read_docs(store: ControlStore, layout: RunLayout) -> tuple[dict | None, dict | None]:
    return store.get_json(layout.run_json), store.get_json(layout.status_json)


def read_quietly(store: ControlStore, view: RunView) -> None:
    """Fill `view` from its output, or note why not (for output roots the user did not name)."""
    try:
        view.info, view.status = read_docs(store, view.layout)
    except EvalsvcError as e:
        view.notes.append(f"cannot read {view.layout.uri}: {e.message}")


def list_runs(root: str, store: ControlStore) -> list[RunView]:
    """Every run under `root`/runs/ with its documents (read in parallel: one or two GETs per run)."""
    ids = run_ids(root, store)

    def view(run_id: str) -> RunView:
        layout = RunLayout(root, run_id)
        return RunView(run_id, layout, None, *read_docs(store, layout))

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(view, ids))


def run_ids(root: str, store: ControlStore) -> list[str]:
    base = join(root, "runs")
    if not is_s3(base):
        path = Path(base)
        return sorted(p.name for p in path.iterdir() if p.is_dir() and RUN_ID_RE.match(p.name)) if path.is_dir() else []
    bucket, key = split_s3(base)
    client = boto3_client(store.conn or S3Conn.from_options(None))
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key}/", Delimiter="/")
        prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    except Exception as e:  # botocore's errors: name the output, not the SDK
        raise SystemError_(f"output {base}: cannot list runs ({type(e).__name__}: {e})") from None
    return sorted(p[len(key) + 1 :].strip("/") for p in prefixes)


def merge_jobs(views: list[RunView], jobs: list[Any], root: str | None, store: ControlStore) -> list[RunView]:
    """Attach Ray jobs to the runs they started; add submitted runs the output does not show (yet)."""
    by_id = {v.run_id: v for v in views}
    for job in jobs:
        meta = job.metadata or {}
        run_id = meta.get(META_RUN_ID)
        if not run_id:
            continue  # not an evalsvc submission
        if run_id in by_id:
            by_id[run_id].job = job_dict(job)
            continue
        job_root = meta.get(META_OUTPUT)
        if root is not None and job_root != root:
            continue  # another output root's run
        v = RunView(run_id, job=job_dict(job))
        if job_root:
            v.layout = RunLayout(job_root, run_id)
            read_quietly(store, v)
        by_id[run_id] = v
    return sorted(by_id.values(), key=lambda v: v.started or "", reverse=True)


def mark_cancelled(store: ControlStore, layout: RunLayout, when: str) -> bool:
    """Write state "cancelled" into run.json and status.json (the stopped driver may have died before it could).

    A run that succeeded stays succeeded; a "failed" written by a driver dying of the stop signal is replaced.
    """
    info = store.get_json(layout.run_json)
    if info is not None and info.get("state") == "succeeded":
        return False
    info = info or {"version": "1", "run_id": layout.run_id, "output_uri": layout.uri}
    info.update(state="cancelled", finished=info.get("finished") or when, cancelled=when)
    store.put_json(layout.run_json, info)
    status = store.get_json(layout.status_json)
    if status is not None:
        status.update(state="cancelled", updated=when)
        store.put_json(layout.status_json, status)
    return True
