"""Fixtures for the tests of k8s/ and cluster/ configs; puts this folder's helper modules on sys.path.

The helpers (kustomize_lite, crd_schema, rendered) import the same way whether or not tests/ is a package.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import crd_schema  # noqa: E402
from rendered import RAY_KINDS, SCHEMAS  # noqa: E402


@pytest.fixture(scope="session")
def crds() -> dict[str, Path]:
    """Kind → CRD file of KubeRay v1.7.0 (fails, saying where it looked, when shared/ is absent)."""
    assert SCHEMAS.is_dir(), f"KubeRay CRDs not found at {SCHEMAS} (the shared/ folder beside the repository)"
    found = {crd_schema.crd_kind(p): p for p in sorted(SCHEMAS.glob("*.yaml"))}
    kinds = {kind: path for (group, kind), path in found.items() if group == "ray.io"}
    assert set(kinds) >= set(RAY_KINDS), f"CRDs in {SCHEMAS}: {sorted(found)}"
    return kinds
