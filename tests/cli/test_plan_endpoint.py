"""Endpoint candidates in a plan: their own "engine" with nothing to load, keyed by URL + model name (never the key),
counted as endpoint requests; `evalsvc plan` shows them as "endpoint (no load)" with their qps.
"""

from __future__ import annotations

import json

import yaml

from evalsvc.benchmarks.registry import MEDGUARD
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import build_plan

from .test_validate import data_env  # noqa: F401  (fixtures)

N_GUARD = MEDGUARD.splits["sample"]
LIMIT = 4


def manifest(key_ref: str = "${EVALSVC_TEST_EP_KEY}", url: str = "http://127.0.0.1:8000/v1") -> dict:
    return {
        "name": "ep",
        "models": [
            {"name": "local", "source": "org/local", "replicas": 2},
            {"name": "api", "endpoint": {"url": url, "model_name": "gpt-x", "api_key": key_ref, "qps": 2.5,
                                         "concurrency": 4, "usd_per_1m_prompt_tokens": 1.0}},  # fmt: skip
        ],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": LIMIT}}],
        "strategies": ["basic", "safety"],
        "sampling": {"n": 2, "max_tokens": 32},
        "output": {"uri": "./runs"},
    }


def test_endpoint_is_its_own_engine_without_a_load():
    plan = build_plan(validate_manifest(manifest()))
    api = plan.model("api")
    assert plan.engines() == {"local": ["local"], "api": ["api"]}
    assert api.source == "http://127.0.0.1:8000/v1#gpt-x" and api.replicas == 0 and api.endpoint.qps == 2.5
    t = plan.totals()
    assert t["engine_loads"] == 2 and t["endpoint_requests"] == LIMIT * 2 * 2 and t["generations"] == 2 * LIMIT * 2 * 2
    rows = list(plan.rows("api"))
    assert len(rows) == LIMIT * 2 * 2 and {r["model_source"] for r in rows} == {api.source}
    assert plan.to_json()["endpoints"] == {
        "api": {"url": "http://127.0.0.1:8000/v1", "model_name": "gpt-x", "qps": 2.5, "concurrency": 4}
    }


def test_record_keys_follow_url_and_model_name_not_the_key_reference():
    keys = lambda m: [r["record_key"] for r in build_plan(validate_manifest(m)).rows("api")]  # noqa: E731
    same = keys(manifest())
    assert keys(manifest(key_ref="${OTHER_KEY}")) == same
    assert set(keys(manifest(url="http://127.0.0.1:8001/v1"))).isdisjoint(same)


def test_plan_command_shows_endpoint_no_load_and_qps(monkeypatch, tmp_path, cli):
    path = tmp_path / "ep.yaml"
    path.write_text(yaml.safe_dump(manifest()))
    monkeypatch.delenv("EVALSVC_TEST_EP_KEY", raising=False)  # planning never needs the key
    code, out, err = cli("plan", str(path))
    assert (code, err) == (0, "")
    assert "endpoint api (http://127.0.0.1:8000/v1#gpt-x): endpoint (no load), qps 2.5, 4 in flight" in out
    assert "2 engine load(s), 16 endpoint request(s)" in out
    code, out, _ = cli("plan", str(path), "--json")
    assert code == 0 and json.loads(out)["totals"]["endpoint_requests"] == 16
