"""Fixtures for manifest tests: datasets come from the pinned copy beside the checkout, never a user's cache or the net."""

from __future__ import annotations

from pathlib import Path

import pytest

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
BAD = Path(__file__).resolve().parent / "bad"


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EVALSVC_DATA_MIRROR", raising=False)
    monkeypatch.setenv("EVALSVC_DATA_URL", "http://127.0.0.1:9/no-network-in-unit-tests")
