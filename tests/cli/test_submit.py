"""`evalsvc submit` before anything reaches a cluster: a bad manifest or bad options exit 2 without connecting,
and an unreachable head is a one-line system error (exit 1). The real submissions are in tests/jobs/test_cluster.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.usefixtures("own_home")


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


def test_invalid_manifest_exits_2_before_connecting(cli, tmp_path: Path, closed_port: str) -> None:
    bad = manifest(tmp_path, strategies=["basic", "no-such-strategy"], output={"uri": "s3://evalsvc-test/r", "s3": {"secret_access_key": "plain"}})
    code, out, err = cli("submit", bad, "--address", closed_port)
    assert code == 2  # a connection attempt would have been exit 1 ("cannot reach")
    assert "output.s3.secret_access_key" in err and "cannot reach" not in err


def test_missing_benchmark_data_exits_2(cli, tmp_path: Path, closed_port: str) -> None:
    m = manifest(tmp_path, benchmarks=[{"name": "mine", "path": str(tmp_path / "absent.jsonl"), "format": "mcq"}])
    code, _, err = cli("submit", m, "--address", closed_port)
    assert code == 2 and "absent.jsonl" in err
    code, _, err = cli("submit", m, "--address", closed_port, "--skip-data-check")
    assert code == 1 and "cannot reach the Ray Jobs API" in err  # only the schema was checked, then it tried


def test_unreachable_head_is_one_line_exit_1(cli, tmp_path: Path, closed_port: str) -> None:
    code, out, err = cli("submit", manifest(tmp_path), "--address", closed_port)
    assert code == 1
    assert err.count("error:") == 1 and f"cannot reach the Ray Jobs API at {closed_port}" in err
    assert "Traceback" not in err


def test_option_mistakes_exit_2(cli, tmp_path: Path) -> None:
    m = manifest(tmp_path)
    code, _, err = cli("submit", m)
    assert code == 2 and "no cluster address" in err
    code, _, err = cli("submit", m, "--address", "http://h:8265", "--working-dir", ".", "--no-pin")
    assert code == 2 and "choose one" in err
    code, _, err = cli("submit", m, "--address", "http://h:8265", "--run-id", "../x")
    assert code == 2 and "--run-id '../x' is not valid" in err
    code, _, err = cli("submit", m, "--address", "ray://h:10001")
    assert code == 2 and "not the Jobs API" in err


def test_help_has_an_example(cli) -> None:
    code, out, _ = cli("submit", "--help")
    assert code == 0 and "evalsvc submit grid.yaml --address http://127.0.0.1:8265" in out
