"""A rubric benchmark (HealthBench format) end to end: the tiny model answers conversations read from a real S3 server
(SeaweedFS), an open judge on Ray Serve grades every criterion, records and summary land on S3; a second run reuses
generations and judgements without loading an engine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evalsvc.judge.criteria import example_score
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn
from tests.pipeline.conftest import S3_REFS, env_vars

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "evalsvc" / "benchmarks" / "samples" / "rubric_sample.jsonl"
EXAMPLES = 4  # the sample's first four: 5 + 5 + 4 + 4 criteria
CRITERIA = 18
ENGINE = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True}
# The shipped grader's prompt with a short guided explanation: the tiny model writes random text, and a bounded
# explanation keeps every answer whole within max_tokens (the shipped 600-character bound would be cut off).
GRADER = (Path(__file__).resolve().parents[2] / "judges" / "rubric-grader.yaml").read_text().replace(
    "id: rubric-grader", "id: rubric-grader-short"
).replace('[^"\\\\\\x00-\\x1f]{1,600}', "[a-z]{1,8}")


def manifest(model: str, data: str, grader: str, output: str) -> dict:
    return {
        "name": "rubric",
        "models": [{"name": "tiny", "source": model, "engine_args": ENGINE}],
        "benchmarks": [{"name": "hb", "path": data, "format": "rubric", "select": {"limit": EXAMPLES}}],
        "strategies": ["basic", "safety"],
        "sampling": {"max_tokens": 16, "temperature": 0.0},
        "judge": {"model": {"source": model, "engine_args": ENGINE}, "rubrics": {"rubric": grader},
                  "max_tokens": 48, "concurrency": 8},  # fmt: skip
        "output": {"uri": output, "s3": S3_REFS},
        "resources": {"batch_size": 4},
    }


@pytest.fixture(scope="module")
def rubric_runs(ray_local, tiny_model, s3, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rubric")
    assert "[a-z]{1,8}" in GRADER
    (tmp / "grader.yaml").write_text(GRADER)
    prefix = f"rubric-{os.getpid()}"
    s3.client().put_object(Bucket="evalsvc-test", Key=f"{prefix}/data/hb.jsonl", Body=SAMPLE.read_bytes())
    with env_vars(s3.env()):
        m = validate_manifest(manifest(str(tiny_model), f"s3://evalsvc-test/{prefix}/data/hb.jsonl",
                                       str(tmp / "grader.yaml"), f"s3://evalsvc-test/{prefix}/out"))  # fmt: skip
        first = execute(m, RunOptions(keep_judge=True))  # test_run's judge (same config) reuses it
        second = execute(m, RunOptions())  # everything is in the first run: no engine, no judge
        yield first, second, m, S3Conn.from_options(m.output.s3)


def test_every_criterion_is_graded_once_per_generation(rubric_runs):
    first, _, m, conn = rubric_runs
    assert first.state == "succeeded"
    t = read_records(RunLayout(m.output.uri, first.run_id).records, conn,
                     columns=("item_id", "strategy", "benchmark_kind", "messages", "criteria", "example_tags", "score",
                              "parse_ok", "error", "rubric_id"))  # fmt: skip
    assert t.num_rows == 2 * EXAMPLES
    rows = t.to_pylist()
    assert sum(len(r["criteria"]) for r in rows) == 2 * CRITERIA
    for r in rows:
        assert (r["benchmark_kind"], r["rubric_id"], r["error"]) == ("rubric", "rubric-grader-short", None)
        assert all(c["parse_ok"] and c["met"] is not None for c in r["criteria"])  # guided: always whole JSON
        assert all(json.loads(c["raw"])["criteria_met"] is c["met"] for c in r["criteria"])
        want = example_score([c["points"] for c in r["criteria"]], [c["met"] for c in r["criteria"]])
        assert r["score"] == pytest.approx(want) and r["parse_ok"] is (want is not None)
        assert r["example_tags"][0].startswith("theme:")
        messages = json.loads(r["messages"])
        assert (messages[0]["role"] == "system") is (r["strategy"] == "safety")  # the conversation, as it is
    multi = next(r for r in rows if r["item_id"] == "rs-002" and r["strategy"] == "basic")
    assert [m_["role"] for m_ in json.loads(multi["messages"])] == ["user", "assistant", "user"]


def test_summary_status_and_reuse(rubric_runs):
    first, second, _, _ = rubric_runs
    rows = [r for r in first.summary["rows"] if r["benchmark"] == "hb"]
    overall = [r for r in rows if r["group_field"] == "overall"]
    assert len(overall) == 2 and all((r["n"], r["n_criteria"], r["n_criteria_failed"]) == (EXAMPLES, CRITERIA, 0)
                                     for r in overall)  # fmt: skip
    for r in overall:
        s = r["metrics"]["rubric_score"]
        assert 0.0 <= s["lo"] <= s["value"] <= s["hi"] <= 1.0
    groups = {(r["group_field"], r["group_value"]) for r in rows}
    assert {("theme", "emergency_referrals"), ("theme", "context_seeking"), ("axis", "accuracy")} <= groups
    cells = first.status["cells"]
    assert all(c["criteria_total"] == c["criteria_done"] == CRITERIA and c["criteria_failed"] == 0 for c in cells)
    assert first.info["reuse"]["judge_calls"] == 2 * CRITERIA
    print("first run:", first.info["reuse"], "second run:", second.info["reuse"])  # for -s
    assert second.state == "succeeded"
    assert (second.info["reuse"]["generations"], second.info["reuse"]["judge_calls"]) == (0, 0)
    assert second.info["reuse"]["reused_judgements"] == 2 * EXAMPLES
    again = {(r["strategy"], r["group_field"], r["group_value"]): r["metrics"]["rubric_score"]["value"]
             for r in second.summary["rows"]}  # fmt: skip
    assert again == {(r["strategy"], r["group_field"], r["group_value"]): r["metrics"]["rubric_score"]["value"]
                     for r in rows}  # fmt: skip


def test_results_compare_and_report_read_the_run(rubric_runs, s3):
    import subprocess
    import sys

    from evalsvc.render.html import build_report

    first, _, m, conn = rubric_runs
    uri = RunLayout(m.output.uri, first.run_id).uri
    env = {**os.environ, "COLUMNS": "220", **s3.env()}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evalsvc.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=120)  # fmt: skip

    out = cli("results", uri, "--by", "axis")
    assert out.returncode == 0, out.stderr
    assert "criteria failed" in out.stdout and "accuracy" in out.stdout and "left out of both" in out.stdout
    comp = cli("compare", uri, "--json")
    assert comp.returncode == 0, comp.stderr
    (c,) = [c for c in json.loads(comp.stdout)["comparisons"] if c["outcome"] == "rubric_score"]
    assert (c["baseline"], c["other"], c["n_pairs"]) == ("basic", "safety", EXAMPLES)
    html = build_report(uri, None, conn=conn)
    assert "rubric_score" in html
