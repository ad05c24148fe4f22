"""Fixtures for benchmark tests: a throw-away dataset cache, and the pinned MedSafetyBench copy in ../shared/data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalsvc.benchmarks.fetch import find_mirror
from evalsvc.benchmarks.registry import MEDSAFETYBENCH


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache of its own and the default mirror lookup (../shared/data)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(cache))
    monkeypatch.delenv("EVALSVC_DATA_MIRROR", raising=False)
    monkeypatch.delenv("EVALSVC_DATA_URL", raising=False)
    return cache


@pytest.fixture(scope="session")
def shared_msb() -> Path:
    """The pinned MedSafetyBench copy beside the checkout (the test fixture named in DESIGN.md)."""
    root = find_mirror(MEDSAFETYBENCH)
    assert root is not None, "../shared/data/medsafetybench is missing: tests read MedSafetyBench from there"
    return root


@pytest.fixture
def small_mirror(tmp_path: Path, shared_msb: Path, monkeypatch: pytest.MonkeyPatch):
    """A mirror folder holding copies of a few MedSafetyBench files, set as EVALSVC_DATA_MIRROR; returns a copier."""
    base = tmp_path / "mirror"

    def copy(*paths: str) -> Path:
        for p in paths:
            dest = base / "medsafetybench" / p
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared_msb / p, dest)
        return base / "medsafetybench"

    (base / "medsafetybench").mkdir(parents=True)
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", str(base))
    return copy
