"""Placement on a head (no CPUs: driver only) and three workers: a checkpoint's two engine replicas run on two
different nodes, and the judge, asking for a custom resource only one worker has, runs on that worker."""

from __future__ import annotations

import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from tests.cluster.conftest import ENGINE_CLASS, actors_of, joined_cluster
from tests.pipeline.conftest import S3_REFS, env_vars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}


@pytest.fixture(scope="module")
def three_workers():
    with joined_cluster((None, None, None), worker_cpus=6, head_cpus=0,
                        worker_resources=({}, {}, {"judge_node": 1})) as c:  # fmt: skip
        yield c


def placed_manifest(model: str, uri: str) -> dict:
    return {
        "name": "placed",
        "models": [{"name": "tiny", "source": model, "engine_args": ENGINE, "replicas": 2}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"limit": 2}},
                       {"name": "mcq", "dataset": "medguard", "select": {"limit": 8}}],  # fmt: skip
        "strategies": ["basic", "safety"],
        "sampling": {"max_tokens": 8, "temperature": 0.0},
        "judge": {"model": {"source": model, "engine_args": ENGINE, "placement": {"resources": {"judge_node": 1}}},
                  "max_tokens": 16},  # fmt: skip
        "output": {"uri": uri, "s3": S3_REFS, "cache": False},
        "resources": {"batch_size": 4},
    }


def test_replicas_spread_and_the_judge_lands_on_its_node(three_workers, tiny_model, s3, s3_uri):
    c, workers = three_workers
    judge_node = workers[2].node_id
    with env_vars(s3.env()):
        manifest = validate_manifest(placed_manifest(str(tiny_model), s3_uri))
        result = execute(manifest, RunOptions(address=c.address, keep_judge=True))  # the judge stays up to be seen
    seen_judge = actors_of("LLMServer")
    engines = actors_of(ENGINE_CLASS, live_only=False)
    nodes = {a["Address"]["NodeID"] for a in engines.values()}
    assert result.state == "succeeded"
    assert len(engines) == 2, f"{len(engines)} engine actor(s) for replicas: 2"
    assert len(nodes) == 2, f"two replicas on {len(nodes)} node(s): {sorted(nodes)}"
    assert c.head_node.node_id not in nodes
    judge_nodes = {a["Address"]["NodeID"] for a in seen_judge.values()}
    assert judge_nodes == {judge_node}, f"judge replica on {judge_nodes}, the judge_node worker is {judge_node}"
    print(f"placement: engine replicas on {len(nodes)} nodes {sorted(n[:8] for n in nodes)}; judge on "
          f"{sorted(n[:8] for n in judge_nodes)} (judge_node worker {judge_node[:8]})")  # fmt: skip
