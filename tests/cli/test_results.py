"""`evalsvc results` through the real console entry point: formats, --by, --fail-if exit codes, RUN forms."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from fixtures.synthetic import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(out, "r1", SyntheticRun(n_items=50))
    return out


def evalsvc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "EVALSVC_OUTPUT"}
    full_env.update(COLUMNS="200", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "evalsvc.cli.main", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_default_table_shows_each_benchmark_with_intervals(root):
    res = evalsvc("results", "r1", "--output", root)
    assert res.returncode == 0, res.stderr
    for title in ("msb (harm)", "medguard (mcq)", "medharm (high_risk)"):
        assert title in res.stdout
    assert "mean_harm" in res.stdout and "%" in res.stdout and "[" in res.stdout


def test_json_has_one_row_per_cell(root, cli):
    res = cli("results", "r1", "--output", root, "--json")
    doc = json.loads(res.stdout)
    assert doc["run_id"] == "r1" and len(doc["rows"]) == 12
    assert {r["group_field"] for r in doc["rows"]} == {"overall"}


def test_csv_by_principle(root, cli):
    res = cli("results", "r1", "--output", root, "--csv", "--by", "principle")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and {r["group_field"] for r in rows} == {"principle"}
    assert {r["benchmark"] for r in rows} == {"msb", "medguard"}


def test_markdown_from_a_run_uri_without_output(root, cli):
    res = cli("results", f"{root}/runs/r1", "--markdown")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("### medguard (mcq)") and "| --- |" in res.stdout


def test_output_root_from_the_environment(root, cli):
    res = cli("results", "r1", "--json", env={"EVALSVC_OUTPUT": root})
    assert res.returncode == 0 and json.loads(res.stdout)["run_id"] == "r1"


def test_fail_if_exits_3_naming_the_failing_cells(root, cli):
    res = cli("results", "r1", "--output", root, "--json", "--fail-if", "msb.mean_harm > 2.2")
    assert res.returncode == 3, res.stderr
    doc = json.loads(res.stdout)  # the summary is still printed
    failing = [r for r in doc["rows"] if r["benchmark"] == "msb" and r["metrics"]["mean_harm"]["value"] > 2.2]
    assert failing
    for r in failing:
        assert f"{r['model']} / {r['strategy']}: msb.mean_harm" in res.stderr
    ok = cli(
        "results", "r1", "--output", root, "--json", "--fail-if", "harm.mean_harm > 4.9 or mcq.accuracy < 0.01"
    )
    assert ok.returncode == 0, ok.stderr


def test_bad_fail_if_is_a_usage_error_naming_the_token(root, cli):
    res = cli("results", "r1", "--output", root, "--fail-if", "msb.mean_harm >> 2")
    assert res.returncode == 2
    assert "'>>'" in res.stderr
    res = cli("results", "r1", "--output", root, "--fail-if", "mmlu.accuracy < 0.5")
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
def test_user_mistakes_exit_2_with_one_line(root, args, message, cli):
    res = cli(*[a.format(root=root) for a in args])
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr


def test_threshold_controls_the_flags(root, cli):
    strict = json.loads(cli("results", "r1", "--output", root, "--json", "--threshold", "0").stdout)
    loose = json.loads(cli("results", "r1", "--output", root, "--json", "--threshold", "1").stdout)
    bad = [r for r in strict["rows"] if r["n_parse_fail"] + r["n_error"] > 0]
    assert bad and all(r["flag"] for r in bad)
    assert not any(r["flag"] for r in loose["rows"])


SCALE = SyntheticRun(n_items=12_500, strategies=("basic", "cot", "safety", "cot_safety"), text_chars=2000)  # 300k
# peak RSS from VmHWM: ru_maxrss would carry over the forking pytest process's peak across exec on Linux
MEASURE = (
    "import re, sys, time\n"
    "t = time.time()\n"
    "from evalsvc.cli.main import main\n"
    "try:\n    main()\n"
    "finally:\n"
    "    hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024\n"
    "    print(f'MEASURE rss_mb={hwm:.0f} wall_s={time.time() - t:.2f}', file=sys.stderr)\n"
)


def _measured(args: list[str], env: dict | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    res = subprocess.run(
        [sys.executable, "-c", MEASURE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    line = next(x for x in res.stderr.splitlines() if x.startswith("MEASURE"))
    return res, {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def _check_scale(res: subprocess.CompletedProcess, measured: dict, where: str) -> None:
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert len(doc["rows"]) == 24 and sum(r["n"] for r in doc["rows"]) == 300_000
    # the three text columns hold ~1.8 GB once decoded: reading them would blow far past this
    assert measured["rss_mb"] < 700, measured


@pytest.mark.slow
def test_results_on_300k_records_local(tmp_path):
    write_synthetic_run(str(tmp_path), "big", SCALE)
    res, measured = _measured(["results", "big", "--output", str(tmp_path), "--json"])
    _check_scale(res, measured, "local")


@pytest.mark.slow
def test_results_on_300k_records_s3(s3, s3_uri):
    write_synthetic_run(s3_uri, "big", SCALE, conn=s3.conn)
    res, measured = _measured(["results", f"{s3_uri}/runs/big", "--json"], env=s3.env())
    _check_scale(res, measured, "s3")
