"""`evalsvc list` over a local output root: newest first, with state, cells, progress and start time
(joined with a cluster's jobs in tests/jobs/test_cluster.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from evalsvc.cli import main as cli_main
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    if not any(c.name == "list" for c in cli_main.app.registered_commands):
        cli_main._load_commands()
    monkeypatch.setattr(cli_main, "_load_commands", lambda: None)
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("EVALSVC_DEBUG", "EVALSVC_OUTPUT", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
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
def root(tmp_path: Path) -> Path:
    store = ControlStore()
    runs = [("a-old", "succeeded", "2026-11-20T09:00:00+00:00", 8), ("b-new", "running", "2026-11-22T09:00:00+00:00", 3),
            ("c-mid", "cancelled", "2026-11-21T09:00:00+00:00", 5)]
    for run_id, state, started, done in runs:
        layout = RunLayout(str(tmp_path), run_id)
        store.put_json(layout.run_json, {"run_id": run_id, "state": state, "started": started})
        store.put_json(layout.status_json, {"state": state, "done": done, "total": 8,
                                            "cells": [{"cell_id": "c"}, {"cell_id": "d"}]})
    return tmp_path


def test_list_newest_first_with_progress(run_cli, root: Path) -> None:
    code, out, err = run_cli("list", "--output", root, "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert [(r["run_id"], r["state"], r["done"], r["total"], r["cells"]) for r in runs] == [
        ("b-new", "running", 3, 8, 2), ("c-mid", "cancelled", 5, 8, 2), ("a-old", "succeeded", 8, 8, 2)]
    code, out, _ = run_cli("list", "--output", root, "--limit", "2")
    assert "b-new" in out and "3/8 (37%)" in out and "c-mid" in out and "a-old" not in out


def test_list_from_env_root_and_empty_root(run_cli, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_OUTPUT", str(root))
    code, out, _ = run_cli("list", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = run_cli("list", "--output", root / "nothing-here", "--json")
    assert code == 0 and json.loads(out) == []


def test_list_needs_a_root_or_a_cluster(run_cli) -> None:
    code, _, err = run_cli("list")
    assert code == 2 and "give --output ROOT" in err
