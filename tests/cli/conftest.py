"""The command tests run against files and fake servers only: the machine's own cluster and output settings never
reach them (a test that needs one sets it)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def no_cluster_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVALSVC_OUTPUT", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A home folder of the test's own: saved cluster connections and ~/.ray/auth_token are read from there."""
    monkeypatch.setenv("HOME", str(tmp_path))
