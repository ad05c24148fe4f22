"""Fixtures of the report tests: small synthetic runs written as Hive-partitioned Parquet to a temp folder."""

from __future__ import annotations

import pytest

from evalsvc.report.read import open_run
from evalsvc.report.synthetic import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """2 models × 3 benchmarks (harm, mcq, high_risk) × 2 strategies, 60 items, one sample each."""
    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "small", SyntheticRun())
    return open_run("small", root)


@pytest.fixture(scope="session")
def multi_sample_run(tmp_path_factory):
    """Like small_run with 3 samples per item, so intervals must resample items."""
    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "multi", SyntheticRun(samples=3, n_items=40))
    return open_run("multi", root)


@pytest.fixture(scope="session")
def guarded_run(tmp_path_factory):
    """small_run's grid with a guardrail axis: arms none, guard-a, guard-b (guard-b blocks more), 40 items."""
    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "guarded", SyntheticRun(n_items=40, guardrails=("none", "guard-a", "guard-b")))
    return open_run("guarded", root)
