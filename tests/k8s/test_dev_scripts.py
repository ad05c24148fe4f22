"""cluster/dev/start-local.sh and stop-local.sh: shell syntax, the commands they would run, and a real S3 round trip.

Ray itself is never started here (only --dry-run shows its command); the S3 half runs a real SeaweedFS on loopback.
"""

from __future__ import annotations

import os
import random
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from rendered import REPO

DEV = REPO / "cluster" / "dev"
START, STOP = DEV / "start-local.sh", DEV / "stop-local.sh"
SCRIPTS = sorted((REPO / "cluster" / "dev").glob("*.sh")) + sorted((REPO / "cluster" / "launcher").glob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shell_syntax(script):
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


def run(script: Path, *args: str, env: dict | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=timeout)


def dev_env(tmp_path: Path, s3_port: int = 8333) -> dict:
    return {**os.environ, "EVALSVC_DEV_DIR": str(tmp_path / "dev"), "EVALSVC_S3_PORT": str(s3_port)}


def test_dry_run_shows_the_loopback_ray_head_and_weed_mini(tmp_path):
    out = run(START, "--dry-run", env=dev_env(tmp_path))
    assert out.returncode == 0, out.stderr
    ray_line = next(ln for ln in out.stdout.splitlines() if " start --head" in ln)
    for flag in ("--dashboard-host 127.0.0.1", "--num-cpus 8", "--include-dashboard true", "--block"):
        assert flag in ray_line
    weed_line = next(ln for ln in out.stdout.splitlines() if " mini " in ln)
    assert "-ip.bind=127.0.0.1" in weed_line and "-s3.port=8333" in weed_line
    assert not (tmp_path / "dev" / "s3.env").exists(), "a dry run writes no credentials"


def dry_run_commands(tmp_path: Path) -> dict[str, list[str]]:
    out = run(START, "--dry-run", env=dev_env(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = [ln.removeprefix("would run: ").split("  (")[0].split() for ln in out.stdout.splitlines()]
    return {"ray": next(w for w in lines if "start" in w), "weed": next(w for w in lines if "mini" in w)}


def test_every_flag_the_script_passes_is_one_the_installed_tools_know(tmp_path):
    cmds = dry_run_commands(tmp_path)
    ray_help = subprocess.run([cmds["ray"][0], "start", "--help"], capture_output=True, text=True, timeout=60)
    weed_help = subprocess.run([cmds["weed"][0], "mini", "-h"], capture_output=True, text=True, timeout=60)
    for flag in [w for w in cmds["ray"] if w.startswith("--")]:
        assert flag in ray_help.stdout, f"ray start has no {flag}"
    for flag in [w.split("=")[0] for w in cmds["weed"] if w.startswith("-")]:
        assert re.search(rf"^\s+{re.escape(flag)}\b", weed_help.stdout + weed_help.stderr, re.M), f"weed mini has no {flag}"


@pytest.mark.parametrize("script", [START, STOP], ids=lambda p: p.name)
def test_help_and_unknown_option(script, tmp_path):
    assert run(script, "--help", env=dev_env(tmp_path)).returncode == 0
    bad = run(script, "--frobnicate", env=dev_env(tmp_path))
    assert bad.returncode == 2 and "unknown option" in bad.stderr


def free_port_base() -> int:
    """A port p where p..p+4 and p+10000..p+10004 are all free on loopback (SeaweedFS' layout in the script)."""
    for _ in range(200):
        base = random.randint(20000, 29000)
        ports = [base + i for i in range(5)] + [base + 10000 + i for i in range(5)]
        socks = []
        try:
            for p in ports:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def read_env_file(path: Path) -> dict[str, str]:
    lines = [ln.removeprefix("export ") for ln in path.read_text().splitlines() if ln.startswith("export ")]
    return dict(ln.split("=", 1) for ln in lines)


@pytest.mark.slow
def test_s3_only_stack_starts_keeps_secrets_private_and_stops(tmp_path):
    import boto3

    env = dev_env(tmp_path, free_port_base())
    env_file = tmp_path / "dev" / "s3.env"
    pid_file = tmp_path / "dev" / "weed.pid"
    try:
        started = run(START, "--s3-only", env=env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        creds = read_env_file(env_file)
        assert f"source {env_file}" in started.stdout
        for secret in (creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]):
            assert secret not in started.stdout + started.stderr
        s3 = boto3.client(
            "s3", endpoint_url=creds["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"], aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
        s3.put_object(Bucket="evalsvc-dev", Key="probe/a.txt", Body=b"kept")
        # A restart keeps the credentials (the user's sourced shell stays valid) and the data.
        assert run(STOP, env=env).returncode == 0
        assert run(START, "--s3-only", env=env).returncode == 0
        assert read_env_file(env_file) == creds
        assert s3.get_object(Bucket="evalsvc-dev", Key="probe/a.txt")["Body"].read() == b"kept"
        pid = int(pid_file.read_text())
    finally:
        stopped = run(STOP, env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "not started here" in run(STOP, env=env).stdout
