"""`evalsvc status` (and the no-cluster paths of `logs` / `cancel`) without Ray: a run read from its output alone,
an unreachable head next to a reachable output, and the one-line errors. With a cluster: tests/jobs/test_cluster.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout

pytestmark = pytest.mark.usefixtures("own_home")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An output root with one run half-way through its two cells."""
    store, layout = ControlStore(), RunLayout(str(tmp_path / "out"), "r1")
    store.put_json(layout.run_json, {"run_id": "r1", "state": "running", "started": "2026-11-22T10:00:00+00:00"})
    cells = [{"cell_id": f"c{i}", "model": "tiny", "benchmark": "mcq", "strategy": s, "total": 4, "done": 2 + i,
              "errors": 0, "parse_failures": i} for i, s in enumerate(("basic", "safety"))]
    store.put_json(layout.status_json, {"run_id": "r1", "state": "running", "done": 5, "total": 8, "cells": cells})
    return tmp_path / "out"


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_status_from_the_output_alone(cli, root: Path) -> None:
    code, out, err = cli("status", "r1", "--output", root)
    assert code == 0, err
    assert "run r1: running" in out and "progress: 5/8 generations in 2 cells" in out
    assert "safety" in out and f"{root}/runs/r1" in out
    code, out, _ = cli("status", f"{root}/runs/r1", "--json")
    doc = json.loads(out)
    assert (doc["state"], doc["done"], doc["total"], doc["job"]) == ("running", 5, 8, None)


def test_unreachable_head_falls_back_to_the_output(cli, root: Path) -> None:
    address = closed_port()
    code, out, err = cli("status", "r1", "--output", root, "--address", address)
    assert code == 0 and "run r1: running" in out
    assert f"note: cannot reach the Ray Jobs API at {address}" in err
    code, _, err = cli("status", "r1", "--address", address)  # nowhere else to look
    assert code == 1 and "cannot reach the Ray Jobs API" in err


def test_unknown_run_exits_2(cli, root: Path) -> None:
    code, _, err = cli("status", "nope", "--output", root)
    assert code == 2 and "run 'nope': not found" in err
    code, _, err = cli("status", "nope")
    assert code == 2 and "no output root" in err


def test_logs_and_cancel_need_a_cluster(cli) -> None:
    for command in ("logs", "cancel"):
        code, _, err = cli(command, "r1")
        assert code == 2 and "no cluster address" in err, command
    code, _, err = cli("cancel", "r1", "--address", closed_port())
    assert code == 1 and "cannot reach the Ray Jobs API" in err
