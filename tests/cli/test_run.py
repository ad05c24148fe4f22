"""`evalsvc run --json` as a user pipes it: a real run (tiny model, judge on Serve, records on a real S3 server) whose
stdout is exactly one JSON document and whose stderr holds evalsvc's own lines only; Ray's output is in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline.conftest import S3_REFS

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
OURS = ("Ray, Serve and vLLM output:", "plan: ", "[", "⚠ judge", "judge health:")  # ours, judge health too


def tiny_manifest(model_dir: str, uri: str) -> dict:
    engine = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
    return {
        "name": "cli-json",
        "models": [{"name": "tiny", "source": model_dir, "engine_args": engine}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"sample": 1, "per": "principle"}}],
        "strategies": ["basic"],
        "sampling": {"max_tokens": 8, "temperature": 0.0},
        "judge": {"model": {"source": model_dir, "engine_args": {**engine, "max_model_len": 2048}}, "max_tokens": 16},
        "output": {"uri": uri, "s3": S3_REFS},
        "resources": {"batch_size": 8},
    }


def test_json_stdout_is_one_document_and_ray_output_goes_to_the_log(tiny_model, s3, s3_uri, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(tiny_manifest(str(tiny_model), s3_uri)), encoding="utf-8")
    logs = tmp_path / "logs"
    env = {**os.environ, **s3.env(), "PYTHONPATH": str(REPO), "EVALSVC_LOG_DIR": str(logs), "COLUMNS": "200"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-m", "evalsvc.cli.main", "run", str(path), "--json", "--run-id", "cli-1"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1500)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)  # raises on anything before or after the one document
    assert doc["state"] == "succeeded" and doc["run_id"] == "cli-1" and doc["status"]["done"] == 9
    assert doc["status"]["cells"][0]["errors"] == 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert [ln for ln in lines if not ln.startswith(OURS)] == [], proc.stderr[-3000:]
    assert any(ln.startswith("plan: 1 cell (1 model × 1 benchmark × 1 strategy), 9 records") for ln in lines)
    assert any("succeeded: 9/9 generated · 9/9 records · 0 errors" in ln for ln in lines)  # the last plain line
    log = logs / "cli-1.log"
    assert log.stat().st_size > 0  # Ray's, Serve's and vLLM's output went here instead
