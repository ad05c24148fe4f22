"""GPU workers that schedule on real nodes: sizes below an 8-vCPU / 64 GiB node's allocatable, a model cache with
HF_HOME on it, an ephemeral-storage request, the optional HF token, and a judge pinned to a >= 48 GB GPU."""

from __future__ import annotations

import re

import pytest
import yaml
from rendered import cluster_specs, one, pod_templates, render

# What the kubelet of a g6e.2xlarge (8 vCPU, 64 GiB, one L40S) leaves to pods, with room for daemonsets.
NODE_ALLOCATABLE = {"cpu": 7.5, "memory": 60 * 2**30}
JUDGE_GPUS = {"L40S": 48, "A100": 80, "H100": 80, "A6000": 48}  # accelerator_type → GB, for a 14B bf16 judge
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}


def quantity(q: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?", str(q))
    assert m, f"not a quantity: {q!r}"
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "m" else n * UNITS.get(unit, 1)


def gpu_workers(overlay: str):
    for where, spec in cluster_specs(render(overlay)).items():
        for group, template in pod_templates(spec)[1:]:
            yield f"{where}/{group}", template["spec"]


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_gpu_workers_fit_an_8_vcpu_64_gib_node(overlay):
    for where, pod in gpu_workers(overlay):
        res = pod["containers"][0]["resources"]
        for key, most in NODE_ALLOCATABLE.items():
            assert quantity(res["requests"][key]) <= most, f"{where}: requests.{key} {res['requests'][key]}"
            assert quantity(res["limits"][key]) <= most, f"{where}: limits.{key} {res['limits'][key]}"
        assert quantity(res["requests"]["ephemeral-storage"]) >= 8 * 2**30, where


def test_the_gpu_overlay_sets_the_same_sizes_everywhere():
    sizes = {where: pod["containers"][0]["resources"] for where, pod in gpu_workers("overlays/gpu")}
    assert len(sizes) == 3 and len({yaml.safe_dump(s) for s in sizes.values()}) == 1, sizes


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_model_downloads_go_to_a_cache_volume_and_the_hf_token_is_optional(overlay):
    for where, pod in gpu_workers(overlay):
        c = pod["containers"][0]
        env = {e["name"]: e for e in c["env"]}
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert env["HF_HOME"]["value"].startswith(mounts["model-cache"] + "/"), where
        cache = volumes["model-cache"]
        assert "hostPath" in cache or "persistentVolumeClaim" in cache, where
        assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True, where


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_the_judge_is_pinned_to_a_big_enough_gpu_on_matching_nodes(overlay):
    docs = render(overlay)
    service = one(docs, "RayService")
    (cfg,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]["llm_configs"]
    assert JUDGE_GPUS.get(cfg["accelerator_type"], 0) >= 48
    (group,) = service["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    selector = group["template"]["spec"]["nodeSelector"]
    assert any(cfg["accelerator_type"] in v for v in selector.values()), selector


def test_quantity_parser():
    assert quantity("7") == 7 and quantity("500m") == 0.5 and quantity("56Gi") == 56 * 2**30
    with pytest.raises(AssertionError):
        quantity("lots")
