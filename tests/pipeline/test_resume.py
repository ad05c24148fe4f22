"""Resume: a driver killed with SIGKILL mid-run (with the local Ray it started), then run again with the same run id,
ends with the exact record count, no duplicate keys, and regenerates at most what was in flight. The run again is
`execute` on the pipeline tests' own local Ray, as a later `evalsvc run` would be on a fresh one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from tests.cluster.conftest import actors_of
from tests.pipeline.conftest import tiny_mcq_manifest

pytestmark = pytest.mark.slow

ITEMS = 20  # the MedGuard-format sample
STRATEGIES = ["basic", "cot", "safety", "cot_safety"]
SAMPLES = 4  # samples per item: enough rows (320) that the run is still going when the first files land


def manifest(model_dir: Path, out: Path) -> dict:
    return tiny_mcq_manifest("resume", model_dir, str(out), STRATEGIES, SAMPLES)


def _run(path: Path, run_id: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "evalsvc.cli.main", "run", str(path), "--run-id", run_id, "--json"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.open("wb"), start_new_session=True)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the run's session: the driver's process group, and the Ray workers (each in a
    group of its own) with the vLLM engine cores they spawned, which a group kill alone leaves running."""
    import psutil

    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                p.kill()
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass


def _files(records: Path) -> list[Path]:
    return sorted(p for p in records.rglob("*.parquet") if not p.name.startswith("."))


def _settled_count(layout: RunLayout) -> int:
    """Records on disk once nothing of the killed run writes any more (a worker may finish a file it had open)."""
    counts = []
    while len(counts) < 3 or len(set(counts[-3:])) > 1:
        time.sleep(1)
        counts.append(read_records(layout.records, None, columns=("record_key",)).num_rows)
    return counts[-1]


def test_driver_killed_mid_run_then_resumed(ray_local, tiny_model, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(manifest(tiny_model, tmp_path / "out")))
    layout = RunLayout(str(tmp_path / "out"), "resume-1")
    records = Path(layout.records)
    proc = _run(path, layout.run_id, tmp_path / "first.log")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not _files(records) and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, "the run finished before it could be killed"
    _kill_session(proc.pid)  # the driver and the local Ray it started, all at once
    proc.wait()
    written = _settled_count(layout)
    total = ITEMS * len(STRATEGIES) * SAMPLES
    assert 0 < written < total

    judge_stages = set(actors_of("JudgeStage", live_only=False))
    again = execute(validate_manifest(manifest(tiny_model, tmp_path / "out")), RunOptions(run_id=layout.run_id))
    assert len(set(actors_of("JudgeStage", live_only=False)) - judge_stages) == 1  # no judge: one record-stage actor, not a pool
    assert again.state == "succeeded", again.info.get("error")
    t = read_records(layout.records, None, columns=("record_key", "run_id", "response", "error"))
    keys = t["record_key"].to_pylist()
    assert len(keys) == total and len(set(keys)) == total
    import json

    reuse = json.loads(Path(layout.run_json).read_text())["reuse"]
    assert reuse["already_in_run"] == written
    assert reuse["generations"] == total - written  # only what was missing is generated
