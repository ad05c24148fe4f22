"""`evalsvc compare` through the console entry point (in-process): JSON comparisons, baselines, the human table."""

from __future__ import annotations

import json

import pytest
from fixtures.synthetic import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(out, "r1", SyntheticRun(n_items=50, strategies=("basic", "cot", "safety")))
    return out


def test_json_against_a_strategy_baseline_with_holm(root, cli):
    res = cli("compare", "r1", "--output", root, "--baseline", "cot", "--json")
    assert res.returncode == 0, res.stderr
    comps = json.loads(res.stdout)["comparisons"]
    assert {(c["axis"], c["baseline"]) for c in comps} == {("strategy", "cot")}
    assert {c["other"] for c in comps} == {"basic", "safety"}
    assert all(c["p_holm"] >= c["p"] for c in comps if c["p"] is not None)
    tests = {c["test"] for c in comps}
    assert "wilcoxon" in tests and tests <= {"mcnemar-exact", "mcnemar-chi2-cc", "wilcoxon"}
    assert all(c["n_pairs"] + c["n_dropped"] > 0 for c in comps)


def test_model_baseline_and_default_table(root, cli):
    res = cli("compare", "r1", "--output", root, "--baseline", "model-a", "--json")
    comps = json.loads(res.stdout)["comparisons"]
    assert {(c["axis"], c["baseline"], c["other"]) for c in comps} == {("model", "model-a", "model-b")}
    table = cli("compare", "r1", "--output", root)
    assert table.returncode == 0, table.stderr
    assert "basic → safety" in table.stdout and "model-a → model-b" in table.stdout and "McNemar" in table.stdout


def test_unknown_baseline_is_a_usage_error(root, cli):
    res = cli("compare", "r1", "--output", root, "--baseline", "gpt-9")
    assert res.returncode == 2 and "neither a model (model-a, model-b) nor a strategy" in res.stderr
