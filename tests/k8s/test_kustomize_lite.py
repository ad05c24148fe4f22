"""The tests' small kustomize renders k8s/ exactly as `kubectl kustomize` does, and refuses what it cannot do.

The comparison runs where kubectl is installed (Debian's kubectl bundles kustomize v5); elsewhere it is skipped.
"""

from __future__ import annotations

import shutil
import subprocess

import kustomize_lite
import pytest
import yaml
from rendered import K8S, OVERLAYS, render

KUBECTL = shutil.which("kubectl")


def keyed(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed: cannot compare with the real kustomize")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_matches_kubectl_kustomize(overlay):
    out = subprocess.run([KUBECTL, "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    real = keyed([d for d in yaml.safe_load_all(out.stdout) if d])
    lite = keyed(render(overlay))
    assert sorted(lite) == sorted(real)
    for key, doc in real.items():
        assert lite[key] == doc, f"{overlay}: {key} differs from kubectl kustomize"


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_refuses_a_kustomize_feature_it_does_not_implement(tmp_path):
    write(tmp_path, "kustomization.yaml", "resources: [cm.yaml]\nnamePrefix: lab-\n")
    write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(NotImplementedError, match="namePrefix"):
        kustomize_lite.build(tmp_path)


def test_a_patch_that_matches_nothing_is_an_error(tmp_path):
    write(tmp_path, "kustomization.yaml", "resources: [cm.yaml]\npatches:\n- path: p.yaml\n  target: {kind: Secret}\n")
    write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    write(tmp_path, "p.yaml", "- {op: add, path: /data, value: {}}\n")
    with pytest.raises(ValueError, match="matches no resource"):
        kustomize_lite.build(tmp_path)


def test_json_patch_operations():
    doc = {"spec": {"groups": [{"n": 1}, {"n": 2}], "x": 1}}
    kustomize_lite.apply_op(doc, {"op": "replace", "path": "/spec/groups/1/n", "value": 3})
    kustomize_lite.apply_op(doc, {"op": "add", "path": "/spec/groups/-", "value": {"n": 4}})
    kustomize_lite.apply_op(doc, {"op": "remove", "path": "/spec/x"})
    kustomize_lite.apply_op(doc, {"op": "add", "path": "/spec/a~1b", "value": True})
    assert doc == {"spec": {"groups": [{"n": 1}, {"n": 3}, {"n": 4}], "a/b": True}}
    with pytest.raises(ValueError):
        kustomize_lite.apply_op(doc, {"op": "replace", "path": "/spec/missing", "value": 1})
    with pytest.raises(ValueError, match="test failed"):
        kustomize_lite.apply_op(doc, {"op": "test", "path": "/spec/groups/0/n", "value": 2})


def test_images_are_rewritten_in_containers_of_custom_resources():
    doc = {"spec": {"deep": {"template": {"spec": {"containers": [{"image": "evalsvc"}, {"image": "other:1"}]}}}}}
    kustomize_lite.set_images(doc, {"name": "evalsvc", "newName": "r.example/evalsvc", "newTag": "t"})
    containers = doc["spec"]["deep"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == ["r.example/evalsvc:t", "other:1"]
