"""Where the configs are, and the k8s/ folders rendered once per test session with kustomize_lite.

The KubeRay CRDs live outside the repository, in ../shared/schemas/kuberay-v1.7.0 (next to the checkout).
"""

from __future__ import annotations

from pathlib import Path

import kustomize_lite

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
SCHEMAS = REPO.parent / "shared" / "schemas" / "kuberay-v1.7.0"
OVERLAYS = ("base", "overlays/cpu-dev", "overlays/gpu")
RAY_KINDS = ("RayCluster", "RayJob", "RayService")

_cache: dict[str, list[dict]] = {}


def render(name: str) -> list[dict]:
    """Documents of k8s/<name> as kustomize renders them (cached: copy before changing one)."""
    if name not in _cache:
        _cache[name] = kustomize_lite.build(K8S / name)
    return _cache[name]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def cluster_specs(docs: list[dict]) -> dict[str, dict]:
    """'Kind/name' → the RayCluster spec inside each Ray custom resource."""
    out = {}
    for d in docs:
        spec = d.get("spec", {})
        inner = {"RayCluster": spec, "RayJob": spec.get("rayClusterSpec"), "RayService": spec.get("rayClusterConfig")}
        if d.get("kind") in inner:
            out[f"{d['kind']}/{d['metadata']['name']}"] = inner[d["kind"]]
    return out


def pod_templates(spec: dict) -> list[tuple[str, dict]]:
    """('head' or the group name, pod template) of one RayCluster spec."""
    groups = [(g["groupName"], g["template"]) for g in spec.get("workerGroupSpecs", [])]
    return [("head", spec["headGroupSpec"]["template"]), *groups]
