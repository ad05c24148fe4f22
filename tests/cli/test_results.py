"""`evalsvc results` through the real console entry point: formats, --by, --fail-if exit codes, RUN forms."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from evalsvc.report.synthetic import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(out, "r1", SyntheticRun(n_items=50))
    return out


def evalsvc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "EVALSVC_OUTPUT"}
    full_env.update(COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "evalsvc.cli.main", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)  # fmt: skip


def test_default_table_shows_each_benchmark_with_intervals(root):
    res = evalsvc("results", "r1", "--output", root)
    assert res.returncode == 0, res.stderr
    for title in ("msb (harm)", "medguard (mcq)", "medharm (high_risk)"):
        assert title in res.stdout
    assert "mean_harm" in res.stdout and "%" in res.stdout and "[" in res.stdout


def test_json_has_one_row_per_cell(root):
    res = evalsvc("results", "r1", "--output", root, "--json")
    doc = json.loads(res.stdout)
    assert doc["run_id"] == "r1" and len(doc["rows"]) == 12
    assert {r["group_field"] for r in doc["rows"]} == {"overall"}


def test_csv_by_principle(root):
    res = evalsvc("results", "r1", "--output", root, "--csv", "--by", "principle")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and {r["group_field"] for r in rows} == {"principle"}
    assert {r["benchmark"] for r in rows} == {"msb", "medguard"}


def test_markdown_from_a_run_uri_without_output(root):
    res = evalsvc("results", f"{root}/runs/r1", "--markdown")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("### medguard (mcq)") and "| --- |" in res.stdout


def test_output_root_from_the_environment(root):
    res = evalsvc("results", "r1", "--json", env={"EVALSVC_OUTPUT": root})
    assert res.returncode == 0 and json.loads(res.stdout)["run_id"] == "r1"


def test_fail_if_exits_3_naming_the_failing_cells(root):
    res = evalsvc("results", "r1", "--output", root, "--json", "--fail-if", "msb.mean_harm > 2.2")
    assert res.returncode == 3, res.stderr
    doc = json.loads(res.stdout)  # the summary is still printed
    failing = [r for r in doc["rows"] if r["benchmark"] == "msb" and r["metrics"]["mean_harm"]["value"] > 2.2]
    assert failing
    for r in failing:
        assert f"{r['model']} / {r['strategy']}: msb.mean_harm" in res.stderr
    ok = evalsvc("results", "r1", "--output", root, "--json", "--fail-if", "harm.mean_harm > 4.9 or mcq.accuracy < 0.01")
    assert ok.returncode == 0, ok.stderr


def test_bad_fail_if_is_a_usage_error_naming_the_token(root):
    res = evalsvc("results", "r1", "--output", root, "--fail-if", "msb.mean_harm >> 2")
    assert res.returncode == 2
    assert "'>>'" in res.stderr
    res = evalsvc("results", "r1", "--output", root, "--fail-if", "mmlu.accuracy < 0.5")
    assert res.returncode == 2 and "'mmlu' is neither a benchmark" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["results", "nope"], "--output"),
        (["results", "missing", "--output", "{root}"], "no records there"),
        (["results", "r1", "--output", "{root}", "--json", "--csv"], "choose one of"),
        (["results", "r1", "--output", "{root}", "--by", "colour"], "choose one of"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(root, args, message):
    res = evalsvc(*[a.format(root=root) for a in args])
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr


def test_threshold_controls_the_flags(root):
    strict = json.loads(evalsvc("results", "r1", "--output", root, "--json", "--threshold", "0").stdout)
    loose = json.loads(evalsvc("results", "r1", "--output", root, "--json", "--threshold", "1").stdout)
    bad = [r for r in strict["rows"] if r["n_parse_fail"] + r["n_error"] > 0]
    assert bad and all(r["flag"] for r in bad)
    assert not any(r["flag"] for r in loose["rows"])
