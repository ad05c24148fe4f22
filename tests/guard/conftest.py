"""Fixtures of the guard tests: guardrail manifests on the bundled MedHarm sample (no network, no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

JUDGE = {"url": "http://127.0.0.1:9/v1", "model_name": "judge"}
GUARD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EVALSVC_DATA_MIRROR", raising=False)
    monkeypatch.setenv("EVALSVC_DATA_URL", "http://127.0.0.1:9/no-network-in-unit-tests")


def guard_manifest(guardrails: list, strategies=("basic", "safety"), limit: int = 4, **changes) -> dict:
    base = {
        "name": "guarded",
        "models": [{"name": "a", "source": "org/a"}, {"name": "b", "source": "org/b"}],
        "benchmarks": [{"name": "mh", "dataset": "medharm", "select": {"limit": limit}},
                       {"name": "mg", "dataset": "medguard", "select": {"limit": 2}}],
        "strategies": list(strategies),
        "judge": JUDGE,
        "guardrails": guardrails,
        "output": {"uri": "./runs"},
    }  # fmt: skip
    return {**base, **changes}


def url_guard(name: str, **fields) -> dict:
    return {"name": name, "url": GUARD_URL, "model_name": name, **fields}
