"""Laptop to cluster for real: `evalsvc submit / status / logs / cancel / list` against a Ray head on loopback with
token auth on, the tiny model on vLLM-CPU, records on a real S3 server.

The head shares this venv, so evalsvc exists there; the success path still uploads the source (--working-dir,
the development path while evalsvc is not on PyPI) and the cancel path uses the cluster's install (--no-pin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from evalsvc.report.read import read_records
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.uri import filesystem

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EVALSVC = Path(sys.executable).parent / "evalsvc"
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def client_env(ray_head, s3, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The laptop's environment: the cluster token and the S3 settings, RAY_AUTH_MODE deliberately unset."""
    for var in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "EVALSVC_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    env = {"RAY_AUTH_TOKEN": ray_head.token, **s3.env()}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def wait_for(predicate, timeout_s: float, what: str, poll_s: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)
    return value


def status_json(cli, run_id: str, *args: str) -> dict:
    code, out, err = cli("status", run_id, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def parquet_files(layout: RunLayout, conn) -> list[str]:
    from pyarrow.fs import FileSelector

    fs, path = filesystem(layout.records, conn)
    try:
        infos = fs.get_file_info(FileSelector(path, recursive=True))
    except FileNotFoundError:
        return []
    return [i.path for i in infos if i.path.endswith(".parquet")]


def test_submit_runs_to_success(ray_head, client_env, cli, tiny_model, s3, s3_uri, write_manifest, grid) -> None:
    manifest = write_manifest(grid(str(tiny_model), s3_uri, limit=4, strategies=("basic", "safety"), max_tokens=8))
    t0 = time.monotonic()
    code, out, err = cli("submit", manifest, "--address", ray_head.address, "--working-dir", REPO, "--json")
    assert code == 0, err
    sub = json.loads(out)
    run_id = sub["run_id"]
    assert sub["job_id"] == run_id and sub["output_uri"] == f"{s3_uri}/runs/{run_id}"
    assert time.monotonic() - t0 < 60  # returns once the job is queued, not when it ends

    def ended():
        doc = status_json(cli, run_id, "--address", ray_head.address)  # the output root comes from the job
        # run.json says "succeeded" before the driver has written the summary and exited: wait for both
        return doc if doc["state"] in TERMINAL and doc["job"]["status"] in ("SUCCEEDED", "FAILED", "STOPPED") else None

    doc = wait_for(ended, 300, f"run {run_id} to end")
    print(f"\nsubmit -> succeeded: {time.monotonic() - t0:.1f} s")
    code, logs, _ = cli("logs", run_id, "--address", ray_head.address)
    assert doc["state"] == "succeeded", logs[-3000:]
    assert doc["job"]["status"] == "SUCCEEDED" and (doc["done"], doc["total"], doc["cells"]) == (8, 8, 2)
    assert "python -m evalsvc.cli.main run manifest.yaml --run-id" in logs and f"run {run_id} succeeded" in logs

    records = read_records(RunLayout(s3_uri, run_id).records, s3.conn, columns=("run_id", "record_key", "strategy"))
    assert records.num_rows == 1 * 4 * 2  # model × items × strategies
    assert set(records.column("run_id").to_pylist()) == {run_id}
    assert len(set(records.column("record_key").to_pylist())) == 8

    # After the cluster: the output alone answers.
    assert status_json(cli, run_id, "--output", s3_uri)["state"] == "succeeded"
    code, out, _ = cli("list", "--output", s3_uri, "--address", ray_head.address, "--json")
    listed = {v["run_id"]: v for v in json.loads(out)}
    assert listed[run_id]["state"] == "succeeded" and listed[run_id]["job"]["status"] == "SUCCEEDED"
    code, followed, _ = cli("logs", run_id, "--address", ray_head.address, "--follow")
    assert code == 0 and f"run {run_id} succeeded" in followed


def test_cancel_mid_run_keeps_written_records(ray_head, client_env, cli, tiny_model, s3, s3_uri, write_manifest, grid) -> None:
    # 20 items × 4 strategies × 16 samples × 256 tokens: minutes of generation, stopped after the first records.
    long = grid(str(tiny_model), s3_uri, limit=20, strategies=("basic", "cot", "safety", "cot_safety"), max_tokens=256, n=16)
    manifest = write_manifest(long)
    code, out, err = cli("submit", manifest, "--address", ray_head.address, "--no-pin", "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    t0 = time.monotonic()
    started = wait_for(lambda: (d := status_json(cli, run_id, "--address", ray_head.address)).get("done") and d, 300,
                       "the first finished records")
    assert started["state"] == "running" and 0 < started["done"] < started["total"] == 1280

    t_cancel = time.monotonic()
    code, out, err = cli("cancel", run_id, "--address", ray_head.address, "--json")
    assert code == 0, err
    result = json.loads(out)
    print(f"\nsubmit -> first records: {t_cancel - t0:.1f} s; cancel -> stopped: {time.monotonic() - t_cancel:.1f} s")
    assert (result["stopped"], result["job_status"], result["marked"]) == (True, "STOPPED", True)

    layout = RunLayout(s3_uri, run_id)
    store = ControlStore(s3.conn)
    files = parquet_files(layout, s3.conn)
    fs, _ = filesystem(layout.records, s3.conn)
    rows = sum(pq.read_table(f, filesystem=fs).num_rows for f in files)  # every file written is whole
    assert 0 <= rows < 1280
    time.sleep(5)  # nothing of the job is left to write more records or to overwrite the state
    assert len(parquet_files(layout, s3.conn)) == len(files)
    doc = status_json(cli, run_id, "--address", ray_head.address)
    assert (doc["state"], doc["run_state"], doc["job"]["status"]) == ("cancelled", "cancelled", "STOPPED")
    assert store.get_json(layout.status_json)["state"] == "cancelled"
    code, out, err = cli("cancel", run_id, "--address", ray_head.address)
    assert code == 0 and "already ended (STOPPED)" in err


def run_process(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The installed console script in a fresh process (no token cached by Ray from an earlier test)."""
    full = {k: v for k, v in os.environ.items() if k not in ("EVALSVC_DEBUG", "RAY_AUTH_TOKEN")}
    full.update(COLUMNS="200", **env)
    return subprocess.run([str(EVALSVC), *args], env=full, capture_output=True, text=True, timeout=120)


def test_wrong_or_missing_token_is_one_clear_line(ray_head, client_env, cli, tiny_model, s3_uri, write_manifest, grid, tmp_path) -> None:
    manifest = write_manifest(grid(str(tiny_model), s3_uri))
    wrong = run_process("submit", str(manifest), "--address", ray_head.address, "--run-id", "never-1", RAY_AUTH_TOKEN="not-the-token")
    assert wrong.returncode == 2
    assert f"error: the cluster at {ray_head.address} rejected the token from RAY_AUTH_TOKEN" in wrong.stderr
    assert "Traceback" not in wrong.stderr + wrong.stdout and "not-the-token" not in wrong.stderr

    missing = run_process("status", "never-1", "--address", ray_head.address, HOME=str(tmp_path))  # no ~/.ray/auth_token
    assert missing.returncode == 2
    assert f"error: the cluster at {ray_head.address} requires a token: set RAY_AUTH_TOKEN" in missing.stderr
    assert "Traceback" not in missing.stderr + missing.stdout

    code, out, _ = cli("list", "--address", ray_head.address, "--json")
    assert code == 0 and "never-1" not in {v["run_id"] for v in json.loads(out)}  # nothing was submitted


def test_rays_own_client_sends_no_token_unless_auth_mode_is_set(ray_head, client_env) -> None:
    """Why evalsvc sends the token itself: with RAY_AUTH_MODE unset, Ray 2.60's client treats auth as disabled
    and sends nothing, even with RAY_AUTH_TOKEN set (checked in a fresh process: Ray caches the mode)."""
    code = (
        "import sys\nfrom ray.exceptions import AuthenticationError\nfrom ray.job_submission import JobSubmissionClient\n"
        "try:\n    JobSubmissionClient(sys.argv[1])\nexcept AuthenticationError as e:\n    print('401' if 'required' in str(e) else e)\n"
        "else:\n    print('accepted')"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    done = subprocess.run([sys.executable, "-c", code, ray_head.address], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "401", done.stderr[-2000:]
