"""The public API of evalsvc.benchmarks: built-in split defaults and errors, kinds and data versions."""

from __future__ import annotations

import hashlib

import pytest

from evalsvc.benchmarks import benchmark_kind, benchmark_version, load_items
from evalsvc.benchmarks.registry import MEDGUARD
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark


@pytest.mark.parametrize(
    ("dataset", "split", "n", "kind"),
    [
        ("medsafetybench", "test", 900, "harm"),
        ("medguard", "sample", 20, "mcq"),
        ("medharm", "sample", 20, "high_risk"),
    ],
)
def test_builtin_defaults(dataset, split, n, kind):
    bench = Benchmark(name="b", dataset=dataset)
    items = load_items(bench)
    assert len(items) == n and {it.split for it in items} == {split} and {it.kind for it in items} == {kind}
    assert benchmark_kind(bench) == kind


def test_named_split_is_loaded():
    assert len(load_items(Benchmark(name="b", dataset="medsafetybench", split="train"))) == 900


@pytest.mark.parametrize(("dataset", "valid"), [("medsafetybench", "test, train, llama3"), ("medguard", "sample")])
def test_unknown_split_lists_the_valid_ones(dataset, valid):
    with pytest.raises(UserError, match=rf"benchmarks\.b\.split: {dataset} has no split 'dev'; use one of {valid}"):
        load_items(Benchmark(name="b", dataset=dataset, split="dev"))


def test_versions():
    assert benchmark_version(Benchmark(name="b", dataset="medsafetybench")) == "medsafetybench@191aa79"
    mg = Benchmark(name="b", dataset="medguard")
    digest = hashlib.sha256(MEDGUARD.sample.read_bytes()).hexdigest()[:12]
    assert benchmark_version(mg) == f"medguard@sha256:{digest}"


def test_custom_version_and_kind(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"request": "r"}\n', encoding="utf-8")
    bench = Benchmark(name="b", path=str(path), format="harm")
    assert benchmark_version(bench) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert benchmark_kind(bench) == "harm"
