"""Sweeps give the cluster back: with max_concurrent_models 1, one checkpoint's engine actors are gone (actor table)
and its placement groups removed before the next checkpoint loads."""

from __future__ import annotations

import shutil

import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn
from tests.cluster.conftest import Watch, engine_actors_alive, engine_placement_groups
from tests.pipeline.conftest import S3_REFS, env_vars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CHECKPOINTS = 2  # a hand-over: the first checkpoint's engines gone before the second loads
ITEMS = 4


def sweep_manifest(folders: list[str], uri: str) -> dict:
    engine = {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}
    return {
        "name": "sweep",
        "models": [{"name": f"ckpt-{i}", "source": f, "engine_args": engine} for i, f in enumerate(folders)],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": ITEMS}}],
        "strategies": ["basic"],
        "sampling": {"max_tokens": 8, "temperature": 0.0},
        "output": {"uri": uri, "s3": S3_REFS, "cache": False},
        "resources": {"batch_size": 4, "max_concurrent_models": 1},
    }


def test_a_sweep_never_holds_two_checkpoints_engines(cluster, tiny_model, s3, s3_uri, tmp_path):
    folders = []
    for i in range(CHECKPOINTS):  # distinct checkpoints on disk, as a sweep over training steps would have
        shutil.copytree(tiny_model, tmp_path / f"step-{i}")
        folders.append(str(tmp_path / f"step-{i}"))
    c, _ = cluster
    with env_vars(s3.env()):
        manifest = validate_manifest(sweep_manifest(folders, s3_uri))
        with Watch() as watch:
            result = execute(manifest, RunOptions(address=c.address))
        records = read_records(f"{result.output_uri}/records", S3Conn.from_options(manifest.output.s3))
    assert result.state == "succeeded"
    assert records.num_rows == CHECKPOINTS * ITEMS
    assert watch.samples > 10 and len(watch.seen) >= CHECKPOINTS  # the watcher saw every checkpoint's engine
    assert watch.peak_actors == 1, f"engine actors of two checkpoints alive at once (peak {watch.peak_actors})"
    assert engine_actors_alive() == {} and engine_placement_groups() == {}
    print(f"sweep: {CHECKPOINTS} checkpoints, {len(watch.seen)} engine actors, peak alive {watch.peak_actors}, "
          f"peak engine placement groups {watch.peak_groups}, {watch.samples} samples")  # fmt: skip
