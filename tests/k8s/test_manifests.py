"""k8s/: every document parses, Ray custom resources validate against the KubeRay v1.7 CRDs, and the pieces agree.

Agreement: Secret and ConfigMap references resolve, images and Ray versions match, the run manifest is valid.
"""

from __future__ import annotations

import copy
import re
import tomllib

import crd_schema
import kustomize_lite
import pytest
from rendered import K8S, OVERLAYS, RAY_KINDS, REPO, by_kind, cluster_specs, one, pod_templates, render

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
SECRET_TEMPLATE = K8S / "base" / "s3-secret.template.yaml"
PLACEHOLDER = "REPLACE_ME"
HF_SECRET = "evalsvc-hf"


def yaml_files() -> list:
    return sorted(p.relative_to(REPO) for p in K8S.rglob("*.yaml"))


@pytest.mark.parametrize("rel", yaml_files(), ids=str)
def test_every_yaml_file_parses_without_duplicate_keys(rel):
    docs = kustomize_lite.load_all(REPO / rel)
    assert docs, f"{rel} holds no document"
    for d in docs:
        assert isinstance(d, (dict, list)), f"{rel}: a document is a {type(d).__name__}"


def test_strict_loader_rejects_a_duplicate_key(tmp_path):
    f = tmp_path / "dup.yaml"
    f.write_text("a: 1\nb: 2\na: 3\n")
    with pytest.raises(Exception, match="duplicate key 'a'"):
        kustomize_lite.load_all(f)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_one_of_each_ray_resource_and_the_run_configmap(overlay):
    docs = render(overlay)
    for kind in RAY_KINDS:
        one(docs, kind)
    assert one(docs, "ConfigMap")["metadata"]["name"] == "evalsvc-run-manifest"
    assert not by_kind(docs, "Secret"), "Secrets are created by hand, never applied from k8s/"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_resources_validate_against_kuberay_crds(overlay, crds):
    for doc in render(overlay):
        if doc["kind"] in RAY_KINDS:
            assert doc["apiVersion"] == "ray.io/v1"
            assert crd_schema.errors(doc, crds[doc["kind"]]) == [], f"{overlay}: {doc['kind']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_fields_with_unevaluated_cel_rules_are_not_used(overlay, crds):
    # The validator does not run CEL rules; make sure no document relies on a field that has one.
    for doc in [d for d in render(overlay) if d["kind"] in RAY_KINDS]:
        for path in crd_schema.cel_rule_paths(crds[doc["kind"]], "v1"):
            node = doc
            for part in path:
                node = node.get(part) if isinstance(node, dict) and part not in ("[]", "*") else None
            assert node is None, f"{doc['kind']} sets {'.'.join(path)}, whose CEL rules are not checked here"


def head_container(spec: dict) -> dict:
    return spec["headGroupSpec"]["template"]["spec"]["containers"][0]


MUTATIONS = {
    "replicas is not an integer": lambda s: s["workerGroupSpecs"][0].__setitem__("replicas", "many"),
    "unknown field": lambda s: s["workerGroupSpecs"][0].__setitem__("maxReplica", 3),
    "required groupName missing": lambda s: s["workerGroupSpecs"][0].pop("groupName"),
    "int32 overflow": lambda s: s["workerGroupSpecs"][0].__setitem__("maxReplicas", 2**40),
    "rayStartParams value not a string": lambda s: s["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 0),
    "quantity is a float": lambda s: head_container(s)["resources"]["limits"].__setitem__("cpu", 1.5),
    "quantity is not a quantity": lambda s: head_container(s)["resources"]["limits"].__setitem__("memory", "lots"),
    "duplicate container name": lambda s: s["headGroupSpec"]["template"]["spec"]["containers"].append(
        copy.deepcopy(s["headGroupSpec"]["template"]["spec"]["containers"][0])
    ),
    "auth mode not in enum": lambda s: s["authOptions"].__setitem__("mode", "password"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
@pytest.mark.parametrize("kind", RAY_KINDS)
def test_a_broken_copy_fails_validation(kind, mutation, crds):
    doc = copy.deepcopy(one(render("base"), kind))
    MUTATIONS[mutation](cluster_specs([doc])[f"{kind}/{doc['metadata']['name']}"])
    assert crd_schema.errors(doc, crds[kind]), f"{kind} with '{mutation}' passed validation"


def all_documents() -> list[tuple[str, dict]]:
    docs = [(o, d) for o in OVERLAYS for d in render(o)]
    return docs + [("template", d) for d in kustomize_lite.load_all(SECRET_TEMPLATE)]


def test_core_objects_have_api_version_kind_and_a_valid_name():
    for where, doc in all_documents():
        assert doc.get("apiVersion") and doc.get("kind"), f"{where}: {doc}"
        name = doc.get("metadata", {}).get("name", "")
        assert DNS_SUBDOMAIN.match(name), f"{where}: {doc['kind']} name {name!r} is not a DNS-1123 name"
        assert doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") or doc["kind"] == "Secret"


def test_secret_template_holds_only_placeholders():
    (secret,) = kustomize_lite.load_all(SECRET_TEMPLATE)
    assert secret["kind"] == "Secret" and "data" not in secret
    assert secret["stringData"], "the template lists the keys the pods read"
    for key, value in secret["stringData"].items():
        assert value == PLACEHOLDER, f"{key}: a template value must be {PLACEHOLDER}, not {value!r}"
    # Nothing that looks like a real AWS key anywhere under k8s/.
    for path in K8S.rglob("*"):
        if path.is_file():
            assert not re.search(r"\bA(KIA|SIA)[A-Z0-9]{16}\b", path.read_text(errors="replace")), path


def secret_key_refs(node) -> list[dict]:
    if isinstance(node, dict):
        own = [node["secretKeyRef"]] if "secretKeyRef" in node else []
        return own + [r for v in node.values() for r in secret_key_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in secret_key_refs(v)]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_key_ref_names_a_key_of_the_template(overlay):
    (secret,) = kustomize_lite.load_all(SECRET_TEMPLATE)
    refs = secret_key_refs(render(overlay))
    assert {r["key"] for r in refs} >= {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for ref in refs:
        if ref["name"] == HF_SECRET:  # the optional Hugging Face token: pods start without that Secret
            assert ref == {"name": HF_SECRET, "key": "HF_TOKEN", "optional": True}, ref
            continue
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"], ref


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_volumes_resolve_and_the_run_manifest_is_mounted_for_the_driver(overlay):
    docs = render(overlay)
    names = {d["metadata"]["name"] for d in by_kind(docs, "ConfigMap")}
    job = one(docs, "RayJob")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    volumes = {v["name"]: v for v in head["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in head["containers"][0]["volumeMounts"]}
    manifest_path = job["spec"]["entrypoint"].split()[2]
    folder, _, key = manifest_path.rpartition("/")
    assert volumes[mounts[folder]]["configMap"]["name"] in names
    assert key in one(docs, "ConfigMap")["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rayjob_runs_one_evaluation_and_cleans_up(overlay):
    spec = one(render(overlay), "RayJob")["spec"]
    assert re.fullmatch(r"evalsvc run /manifests/run\.yaml --output s3://[a-z0-9.-]{3,63}/\S+", spec["entrypoint"])
    assert spec["submissionMode"] in ("K8sJobMode", "HTTPMode")
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    assert spec["backoffLimit"] >= 0 and spec["activeDeadlineSeconds"] > 0
    assert "clusterSelector" not in spec, "a run gets a cluster of its own"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_heads_take_no_work_and_expose_dashboard_and_serve(overlay):
    for where, spec in cluster_specs(render(overlay)).items():
        params = spec["headGroupSpec"]["rayStartParams"]
        assert params.get("num-cpus") == "0" and params.get("num-gpus") == "0", where
        ports = {p["containerPort"] for p in spec["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {8265, 8000} <= ports, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_autoscale_within_bounds_with_token_auth(overlay):
    for where, spec in cluster_specs(render(overlay)).items():
        assert spec["enableInTreeAutoscaling"] is True, where
        assert spec["authOptions"] == {"mode": "token", "secretName": "evalsvc-ray-auth"}, where
        for g in spec["workerGroupSpecs"]:
            assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"], f"{where}/{g['groupName']}"
            assert g["maxReplicas"] >= 1


def worker_containers(overlay: str):
    for where, spec in cluster_specs(render(overlay)).items():
        for group, template in pod_templates(spec)[1:]:
            for c in template["spec"]["containers"]:
                yield f"{where}/{group}", c


@pytest.mark.parametrize("overlay", ["base", "overlays/gpu"])
def test_gpu_workers_ask_for_whole_gpus(overlay):
    for where, c in worker_containers(overlay):
        res = c["resources"]
        assert int(res["limits"]["nvidia.com/gpu"]) >= 1, where
        assert res["requests"].get("nvidia.com/gpu") == res["limits"]["nvidia.com/gpu"], where


def test_cpu_dev_has_no_gpu_and_sets_up_vllm_cpu():
    assert "nvidia.com/gpu" not in str(render("overlays/cpu-dev"))
    for where, c in worker_containers("overlays/cpu-dev"):
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env.get("VLLM_CPU_KVCACHE_SPACE") and env.get("VLLM_CPU_OMP_THREADS_BIND"), where


def ray_images(overlay: str) -> set[str]:
    templates = [t for spec in cluster_specs(render(overlay)).values() for _, t in pod_templates(spec)]
    return {c["image"] for t in templates for c in t["spec"]["containers"]}


@pytest.mark.parametrize(("overlay", "flavour"), [("overlays/cpu-dev", "cpu"), ("overlays/gpu", "gpu")])
def test_overlay_maps_every_ray_pod_to_one_image_of_its_flavour(overlay, flavour):
    images = ray_images(overlay)
    assert len(images) == 1, images
    assert images.pop().endswith(f"-ray{ray_version()}-{flavour}")


def ray_version() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d for d in deps if re.match(r"ray(\[.*\])?==", d)]
    return pin.split("==")[1]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_version_matches_the_pinned_ray(overlay):
    versions = {spec["rayVersion"] for spec in cluster_specs(render(overlay)).values()}
    assert versions == {ray_version()}
