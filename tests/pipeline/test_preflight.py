"""The cluster pre-flight: local paths on a multi-host cluster and plans no node can hold, over hand-made node lists."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline.preflight import (
    ClusterView,
    Node,
    cluster_problems,
    demands,
    is_local,
    local_paths,
    packed,
)

DRIVER = "10.0.0.1"
CPU8 = {"CPU": 8.0, "memory": 32e9}
GPU_L4 = {"CPU": 8.0, "GPU": 1.0, "accelerator_type:L4": 1.0}


def manifest(**over) -> Manifest:
    doc = {
        "name": "t",
        "models": [{"name": "m", "source": "org/model"}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard"}],
        "strategies": ["basic"],
        "output": {"uri": "s3://bucket/runs"},
    }
    for k, v in over.items():
        doc[k] = {**doc[k], **v} if isinstance(doc.get(k), dict) and isinstance(v, dict) else v
    return Manifest.model_validate(doc)


def view(*nodes: tuple[str, dict], groups=()) -> ClusterView:
    return ClusterView(tuple(Node(f"n{i}", ip, "", res) for i, (ip, res) in enumerate(nodes)), DRIVER, groups)


ONE_HOST = view((DRIVER, CPU8), (DRIVER, CPU8))  # ray.cluster_utils.Cluster: every node on the driver's IP
TWO_HOSTS = view((DRIVER, {"CPU": 0.0}), ("10.0.0.2", CPU8), ("10.0.0.3", CPU8))


def test_local_output_on_multi_host_cluster_is_refused_naming_field_and_fixes(tmp_path):
    m = manifest(output={"uri": str(tmp_path)})
    problems = cluster_problems(m, str(tmp_path), TWO_HOSTS)
    assert len(problems) == 1
    assert problems[0].startswith("output.uri: ")
    assert "10.0.0.2" in problems[0] and "s3://" in problems[0] and "output.shared_filesystem: true" in problems[0]


def test_local_paths_pass_when_every_node_is_on_the_driver_host_or_the_folder_is_shared(tmp_path):
    local = manifest(output={"uri": str(tmp_path)})
    assert cluster_problems(local, str(tmp_path), ONE_HOST) == []
    shared = manifest(output={"uri": str(tmp_path), "shared_filesystem": True})
    assert cluster_problems(shared, str(tmp_path), TWO_HOSTS) == []


def test_an_output_override_is_named_as_the_option(tmp_path):
    problems = cluster_problems(manifest(), str(tmp_path), TWO_HOSTS)
    assert problems[0].startswith("--output: ")


def test_worker_read_paths_are_listed_driver_read_files_are_not(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "bench.jsonl").write_text('{"question": "q"}\n')
    m = manifest(
        models=[{"name": "base", "source": str(tmp_path / "base")},
                {"name": "ad", "base": "base", "adapter": str(tmp_path / "ad")},
                {"name": "hub", "source": "org/model"}, {"name": "built", "source": "evalsvc://tiny"}],
        benchmarks=[{"name": "b", "path": str(tmp_path / "bench.jsonl"), "format": "harm"}],
        judge={"model": {"source": "s3://bucket/judge"}, "rubrics": {"harm": str(tmp_path / "r.yaml")}},
        output={"cache": str(tmp_path / "old")},
    )  # fmt: skip
    fields = [f for f, _ in local_paths(m, "s3://bucket/runs")]
    assert fields == ["output.cache", "models.0.source", "models.1.adapter", "models.3.source", "judge.rubrics.harm"]
    assert [f for f, _ in local_paths(m, "s3://bucket/runs", candidates=False, judge=False)] == ["output.cache"]


def test_is_local():
    assert is_local("/data/m") and is_local("./m") and is_local("~/m") and is_local("evalsvc://tiny")
    assert not is_local("s3://b/m") and not is_local("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_gpus_per_replica_no_node_has_is_refused():
    m = manifest(resources={"gpus_per_replica": 1})
    problems = cluster_problems(m, "s3://bucket/runs", TWO_HOSTS)
    assert len(problems) == 1
    assert problems[0].startswith("resources.gpus_per_replica: one engine replica of models.0 (m) needs {CPU: 1, GPU: 1}")
    assert "GPU: 1" in problems[0] and "the most any node has: {CPU: 8, GPU: 0}" in problems[0]


def test_accelerator_type_no_node_has_is_refused_listing_the_types_there():
    m = manifest(resources={"gpus_per_replica": 1, "accelerator_type": "H100"})
    problems = cluster_problems(m, "s3://bucket/runs", view((DRIVER, CPU8), ("10.0.0.2", GPU_L4)))
    assert len(problems) == 1 and problems[0].startswith("resources.gpus_per_replica: ")
    assert "accelerator_type:H100" in problems[0] and "accelerator types in the cluster: L4" in problems[0]
    ok = manifest(resources={"gpus_per_replica": 1, "accelerator_type": "L4"})
    assert cluster_problems(ok, "s3://bucket/runs", view((DRIVER, CPU8), ("10.0.0.2", GPU_L4))) == []


def test_cpus_per_replica_bigger_than_any_node():
    m = manifest(resources={"cpus_per_replica": 16})
    problems = cluster_problems(m, "s3://bucket/runs", TWO_HOSTS)
    assert problems and problems[0].startswith("resources.cpus_per_replica: ") and "lower cpus_per_replica" in problems[0]


def test_more_replicas_than_a_fixed_cluster_holds_at_once():
    m = manifest(models=[{"name": "m", "source": "org/model", "replicas": 3}], resources={"cpus_per_replica": 6})
    problems = cluster_problems(m, "s3://bucket/runs", TWO_HOSTS)
    assert problems == [("models.0.replicas: 3 engine replicas of models.0 (m) need 3 × {CPU: 6} at once, but this "
                         "cluster (no autoscaler) holds 2; lower it, or add nodes")]  # fmt: skip


def test_an_autoscaler_that_can_add_the_shape_or_of_unknown_shapes_is_not_refused():
    m = manifest(models=[{"name": "m", "source": "org/model", "replicas": 4}], resources={"gpus_per_replica": 1})
    assert cluster_problems(m, "s3://bucket/runs", view((DRIVER, {"CPU": 0.0}), groups=(GPU_L4,))) == []
    assert cluster_problems(m, "s3://bucket/runs", view((DRIVER, {"CPU": 0.0}), groups=None)) == []
    problems = cluster_problems(m, "s3://bucket/runs", view((DRIVER, {"CPU": 0.0}), groups=(CPU8,)))
    assert len(problems) == 1 and "GPU: 1" in problems[0]


def test_judge_placement_resources_must_exist_on_some_node():
    judge = {"model": {"source": "org/judge", "placement": {"resources": {"judge_node": 1}}}}
    m = manifest(benchmarks=[{"name": "msb", "dataset": "medsafetybench"}], judge=judge)
    problems = cluster_problems(m, "s3://bucket/runs", TWO_HOSTS)
    assert len(problems) == 1 and problems[0].startswith("judge.model.placement: one Serve replica of judge needs")
    assert "judge_node: 1" in problems[0] and "ray start --resources" in problems[0]
    with_node = view((DRIVER, CPU8), ("10.0.0.2", {**CPU8, "judge_node": 1.0}))
    assert cluster_problems(m, "s3://bucket/runs", with_node) == []


def test_placement_rejects_cpu_gpu_and_bad_amounts():
    for bad in ({"GPU": 1}, {"judge": 0}, {"a b": 1}):
        with pytest.raises(ValueError, match="resource"):
            manifest(benchmarks=[{"name": "msb", "dataset": "medsafetybench"}],
                     judge={"model": {"source": "org/judge", "placement": {"resources": bad}}})  # fmt: skip


def test_tensor_parallel_bundles_and_packing():
    m = manifest(models=[{"name": "m", "source": "org/model", "engine_args": {"tensor_parallel_size": 2}}],
                 resources={"gpus_per_replica": 1})  # fmt: skip
    (d,) = demands(m)
    assert d.bundles == ({"CPU": 1.0, "GPU": 1.0},) * 2
    assert packed(d.bundles, 2, [GPU_L4, GPU_L4, GPU_L4]) == 1  # three one-GPU nodes hold one TP-2 replica, not two
    assert packed(d.bundles, 2, [{"CPU": 8.0, "GPU": 2.0}] * 2) == 2


def test_endpoints_and_adapters_ask_ray_for_no_engine():
    m = manifest(models=[{"name": "base", "source": "org/model"},
                         {"name": "ad", "base": "base", "adapter": "s3://bucket/ad"},
                         {"name": "api", "endpoint": {"url": "https://api.example.com/v1", "model_name": "x"}}])  # fmt: skip
    assert [d.owner for d in demands(m)] == ["models.0 (base)"]


def test_check_cluster_raises_one_user_error_with_every_problem(tmp_path, monkeypatch):
    from evalsvc.pipeline import cluster
    from evalsvc.pipeline.preflight import check_cluster

    monkeypatch.setattr(cluster, "cluster_view", lambda fixed=False: TWO_HOSTS)
    m = manifest(output={"uri": str(tmp_path)}, resources={"gpus_per_replica": 1})
    with pytest.raises(UserError) as e:
        check_cluster(m, str(tmp_path))
    assert e.value.exit_code == 2 and len(e.value.problems) == 2
