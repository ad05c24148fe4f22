"""`evalsvc submit` before anything reaches a cluster: a bad manifest or bad options exit 2 without connecting,
and an unreachable head is a one-line system error (exit 1). The real submissions are in tests/jobs/test_cluster.py."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
import yaml

from evalsvc.cli import main as cli_main


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    if not any(c.name == "submit" for c in cli_main.app.registered_commands):
        cli_main._load_commands()
    monkeypatch.setattr(cli_main, "_load_commands", lambda: None)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("EVALSVC_DEBUG", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["evalsvc", *map(str, args)])
        try:
            cli_main.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def manifest(tmp_path: Path, **override) -> Path:
    doc = {
        "name": "cli-submit",
        "models": [{"name": "tiny", "source": "/models/tiny"}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": 2}}],
        "strategies": ["basic"],
        "output": {"uri": "s3://evalsvc-test/root"},
        **override,
    }
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_invalid_manifest_exits_2_before_connecting(run_cli, tmp_path: Path, closed_port: str) -> None:
    bad = manifest(tmp_path, strategies=["basic", "no-such-strategy"], output={"uri": "s3://evalsvc-test/r", "s3": {"secret_access_key": "plain"}})
    code, out, err = run_cli("submit", bad, "--address", closed_port)
    assert code == 2  # a connection attempt would have been exit 1 ("cannot reach")
    assert "output.s3.secret_access_key" in err and "cannot reach" not in err


def test_missing_benchmark_data_exits_2(run_cli, tmp_path: Path, closed_port: str) -> None:
    m = manifest(tmp_path, benchmarks=[{"name": "mine", "path": str(tmp_path / "absent.jsonl"), "format": "mcq"}])
    code, _, err = run_cli("submit", m, "--address", closed_port)
    assert code == 2 and "absent.jsonl" in err
    code, _, err = run_cli("submit", m, "--address", closed_port, "--skip-data-check")
    assert code == 1 and "cannot reach the Ray Jobs API" in err  # only the schema was checked, then it tried


def test_unreachable_head_is_one_line_exit_1(run_cli, tmp_path: Path, closed_port: str) -> None:
    code, out, err = run_cli("submit", manifest(tmp_path), "--address", closed_port)
    assert code == 1
    assert err.count("error:") == 1 and f"cannot reach the Ray Jobs API at {closed_port}" in err
    assert "Traceback" not in err


def test_option_mistakes_exit_2(run_cli, tmp_path: Path) -> None:
    m = manifest(tmp_path)
    code, _, err = run_cli("submit", m)
    assert code == 2 and "no cluster address" in err
    code, _, err = run_cli("submit", m, "--address", "http://h:8265", "--working-dir", ".", "--no-pin")
    assert code == 2 and "choose one" in err
    code, _, err = run_cli("submit", m, "--address", "http://h:8265", "--run-id", "../x")
    assert code == 2 and "--run-id '../x' is not valid" in err
    code, _, err = run_cli("submit", m, "--address", "ray://h:10001")
    assert code == 2 and "not the Jobs API" in err


def test_help_has_an_example(run_cli) -> None:
    code, out, _ = run_cli("submit", "--help")
    assert code == 0 and "evalsvc submit grid.yaml --address http://127.0.0.1:8265" in out
