"""docs/cluster.md and k8s/README.md name files and Kubernetes objects that exist under those names.

KubeRay derives Service names from resource names (<raycluster>-head-svc, <rayservice>-serve-svc).
"""

from __future__ import annotations

import re

import pytest
from rendered import REPO, one, render

DOCS = [REPO / "docs" / "cluster.md", REPO / "k8s" / "README.md"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_paths_named_in_the_docs_exist(doc):
    text = doc.read_text()
    paths = set(re.findall(r"(?<![\w/.-])((?:k8s|cluster|docs|manifests)/[\w./-]*\w)", text))
    assert paths, f"{doc.name} names no file"
    for rel in paths:
        assert (REPO / rel).exists() or (REPO / "k8s" / rel).exists(), f"{doc.name} names {rel}, which does not exist"


def test_object_names_in_the_walkthrough_match_the_manifests():
    text = (REPO / "docs" / "cluster.md").read_text()
    docs = render("overlays/gpu")
    cluster, service, job = (one(docs, k)["metadata"]["name"] for k in ("RayCluster", "RayService", "RayJob"))
    auth = one(docs, "RayCluster")["spec"]["authOptions"]["secretName"]
    for name in (f"svc/{cluster}-head-svc", f"{service}-serve-svc", f"rayjob {job}", f"job/{job}", f"secret {auth}"):
        assert name in text, f"docs/cluster.md should mention {name}"
    assert "secret generic evalsvc-s3" in text
    for component in ("cluster", "judge", "run"):
        assert f"app.kubernetes.io/component={component}" in text
