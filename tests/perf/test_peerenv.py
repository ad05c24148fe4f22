"""Peer tooling that needs no network: lm-eval task files and the `vllm` metadata shim of the throwaway env."""

from __future__ import annotations

import importlib.metadata as md
import json

import yaml

from evalsvc.perf.peerenv import lm_eval_tasks, site_packages, vllm_metadata_shim


def test_one_generate_until_task_per_strategy(tmp_path):
    rows = [
        {"id": "a|basic", "strategy": "basic", "user": "Q1 {not a placeholder}", "system": None},
        {"id": "b|basic", "strategy": "basic", "user": "Q2", "system": None},
        {"id": "a|safety", "strategy": "safety", "user": "Q1", "system": "be safe"},
    ]
    names = lm_eval_tasks(tmp_path, rows, max_tokens=24)
    assert names == ["evalsvc_basic", "evalsvc_safety"]
    task = yaml.safe_load((tmp_path / "evalsvc_basic.yaml").read_text())
    assert task["output_type"] == "generate_until" and task["generation_kwargs"]["max_gen_toks"] == 24
    data = [json.loads(line) for line in open(task["dataset_kwargs"]["data_files"]["test"])]
    assert [d["user"] for d in data] == ["Q1 {not a placeholder}", "Q2"]


def test_shim_reports_a_cpu_local_version_only_inside_the_env(tmp_path):
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    assert site_packages(tmp_path / "env") == site
    vllm_metadata_shim(tmp_path / "env", "0.32.0")
    dists = [d for d in md.distributions(path=[str(site)]) if d.metadata["Name"] == "vllm"]
    assert [d.version for d in dists] == ["0.32.0+cpu"]
