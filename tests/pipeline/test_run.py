"""The spine end to end: a 2 models × 2 benchmarks × 2 strategies grid on local Ray, vLLM-CPU with the tiny model,
the judge on Ray Serve, records on a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.report.check import recompute_check
from evalsvc.report.read import read_records
from evalsvc.store.layout import RunLayout
from evalsvc.store.record import PARTITION_COLS
from evalsvc.store.uri import S3Conn, filesystem, split_s3

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
            "s3": {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                   "endpoint_url": "${AWS_ENDPOINT_URL_S3}"},
        },
        "resources": {"batch_size": 8},
    }


@pytest.fixture(scope="module")
def grid_run(ray_local, tiny_model, s3, tmp_path_factory):
    """Run the grid once for the module's tests; returns (result, layout, conn, engine constructions)."""
    import os

    env = s3.env()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        manifest = validate_manifest(grid_manifest(str(tiny_model), f"s3://evalsvc-test/spine-{os.getpid()}"))
        before = _engine_actors()
        result = execute(manifest, RunOptions())
        engines = _engine_actors() - before
        conn = S3Conn.from_options(manifest.output.s3)
        yield result, RunLayout(manifest.output.uri, result.run_id), conn, engines
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _engine_actors() -> set[str]:
    """Ids of every vLLM engine actor this Ray has ever created (alive or dead), from the GCS actor table."""
    from ray._private import state  # the public state API needs the dashboard, which local runs leave off

    return {aid for aid, a in state.actors().items() if "vLLMEngineStageUDF" in a["ActorClassName"]}


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


def test_summary_equals_recomputation(grid_run):
    result, layout, conn, _ = grid_run
    import pyarrow.parquet as pq

    fs, path = filesystem(layout.summary_parquet, conn)
    summary = pq.read_table(path, filesystem=fs)
    records = read_records(layout.records, conn)
    assert recompute_check(records, summary) == []
    assert result.summary is not None and result.summary["rows"]
