"""`evalsvc list` over a local output root: newest first, with state, cells, progress and start time
(joined with a cluster's jobs in tests/jobs/test_cluster.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout


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


def test_list_newest_first_with_progress(cli, root: Path) -> None:
    code, out, err = cli("list", "--output", root, "--json")
    assert code == 0, err
    runs = json.loads(out)
    assert [(r["run_id"], r["state"], r["done"], r["total"], r["cells"]) for r in runs] == [
        ("b-new", "running", 3, 8, 2), ("c-mid", "cancelled", 5, 8, 2), ("a-old", "succeeded", 8, 8, 2)]
    code, out, _ = cli("list", "--output", root, "--limit", "2")
    assert "b-new" in out and "3/8 (37%)" in out and "c-mid" in out and "a-old" not in out


def test_list_from_env_root_and_empty_root(cli, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_OUTPUT", str(root))
    code, out, _ = cli("list", "--json")
    assert code == 0 and len(json.loads(out)) == 3
    code, out, _ = cli("list", "--output", root / "nothing-here", "--json")
    assert code == 0 and json.loads(out) == []


def test_list_needs_a_root_or_a_cluster(cli) -> None:
    code, _, err = cli("list")
    assert code == 2 and "give --output ROOT" in err
