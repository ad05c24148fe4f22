"""Fixtures of the laptop-to-cluster tests: a real two-node Ray cluster on loopback with token auth on, started once
per session: a head that runs only the job drivers (no CPUs to schedule on) and a worker node that runs the work.

The head gets the test S3 server's AWS_* variables in its environment (as a cluster gets its Secrets), so the
jobs it runs can write there while nothing secret travels with a submission. It is stopped by killing exactly
the processes it started (found by its private --temp-dir), never with `ray stop`, which would stop every
Ray on the machine.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from evalsvc.engines.apps import free_port

VENV_BIN = Path(sys.executable).parent
AGENT_PORTS = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
               "--metrics-export-port")  # per node; the defaults would collide with any other Ray on the machine


@dataclass(frozen=True)
class RayHead:
    address: str  # the dashboard / Jobs API URL
    token: str
    temp_dir: Path


# One head per module that uses it (tests/jobs/test_cluster.py): it stops when that module ends, so the rest of
# the suite does not run beside an idle head, node and dashboard.
@pytest.fixture(scope="module")
def ray_head(s3) -> Iterator[RayHead]:
    token = secrets.token_hex(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_", "EVALSVC_"))}
    env.update(s3.env())
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token, PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    errors = []
    for _ in range(2):  # `ray start` gives the raylet a fixed 30 s to register: a loaded machine may need a retry
        head, error = start_head(env, token)
        if head is not None:
            try:
                yield head
            finally:
                stop_head(head.temp_dir)
            return
        errors.append(error)
    pytest.fail("ray start failed twice: " + " | ".join(errors))


def start_head(env: dict[str, str], token: str) -> tuple[RayHead | None, str]:
    # Short and private: Ray's unix socket paths live under it (107-byte limit) and `ray_current_cluster` too,
    # so a plain ray.init() elsewhere on the machine does not find this head. The worker node gets a folder of its
    # own inside it (two raylets of one host would otherwise share socket names); stop_head finds both by the path.
    temp_dir = Path(tempfile.mkdtemp(prefix="evr", dir="/tmp"))
    dashboard = free_port()
    ports = {
        "--port": free_port(), "--dashboard-port": dashboard, "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(), "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(), "--metrics-export-port": free_port(),
    }
    cmd = [str(VENV_BIN / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1",
           "--num-cpus", "0", "--object-store-memory", str(200 * 1024**2), "--disable-usage-stats",
           "--temp-dir", str(temp_dir), *[str(x) for kv in ports.items() for x in kv]]
    worker = [str(VENV_BIN / "ray"), "start", "--address", f"127.0.0.1:{ports['--port']}", "--node-ip-address",
              "127.0.0.1", "--num-cpus", "16", "--object-store-memory", str(400 * 1024**2), "--disable-usage-stats",
              "--temp-dir", str(temp_dir / "w"), *[str(x) for flag in AGENT_PORTS for x in (flag, free_port())]]
    for step in (cmd, worker):
        try:
            started = subprocess.run(step, env=env, capture_output=True, text=True, timeout=240, start_new_session=True)
        except subprocess.TimeoutExpired:
            started = None
        if started is None or started.returncode != 0:
            stop_head(temp_dir)
            return None, "timed out" if started is None else (started.stderr.strip().splitlines() or ["?"])[-1]
    return RayHead(f"http://127.0.0.1:{dashboard}", token, temp_dir), ""


def stop_head(temp_dir: Path, grace_s: float = 5.0) -> None:
    """Terminate the processes of the head using `temp_dir` (and all their descendants: workers, the job
    drivers, vLLM engines), then kill what is left after `grace_s`; other Ray instances are not touched."""
    import psutil

    procs = head_processes(temp_dir)
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    shutil.rmtree(temp_dir, ignore_errors=True)


def head_processes(temp_dir: Path) -> list:
    import psutil

    ours = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    roots = []
    for p in psutil.process_iter(["cmdline"]):
        if p.pid not in ours and any(str(temp_dir) in arg for arg in (p.info["cmdline"] or [])):
            roots.append(p)
    found = {}
    for p in roots:  # snapshot the whole tree first: children of a killed parent are re-parented to init
        found[p.pid] = p
        try:
            found.update((c.pid, c) for c in p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return [p for pid, p in found.items() if pid not in ours]


def tiny_grid(model_dir: str, output: str, *, limit: int = 4, strategies: tuple[str, ...] = ("basic", "safety"),
              max_tokens: int = 8, n: int = 1) -> dict:
    """MedGuard MCQ only (parsed, no judge to serve) on the tiny model: the cheapest real grid."""
    engine = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
    return {
        "name": "jobs-tiny",
        "models": [{"name": "tiny", "source": model_dir, "engine_args": engine}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": limit}}],
        "strategies": list(strategies),
        "sampling": {"max_tokens": max_tokens, "temperature": 0.0, "n": n},
        "output": {
            "uri": output,
            "s3": {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                   "endpoint_url": "${AWS_ENDPOINT_URL_S3}"},
        },
        "resources": {"batch_size": 8},
    }


@pytest.fixture
def write_manifest(tmp_path: Path):
    """`write_manifest(doc, name="grid.yaml") -> Path`: the manifest as a YAML file in this test's tmp dir."""
    import yaml

    def write(doc: dict, name: str = "grid.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def grid():
    """The `tiny_grid(model_dir, output, **kw)` manifest builder."""
    return tiny_grid
