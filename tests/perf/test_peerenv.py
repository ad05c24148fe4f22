"""Peer tooling that needs no network: lm-eval task files, the vLLM server command and the `vllm` metadata shim."""

from __future__ import annotations

import importlib.metadata as md
import json

import yaml

from evalsvc.perf.peerenv import VLLMServer, lm_eval_tasks, site_packages, vllm_metadata_shim


def test_one_generate_until_task_per_task_name(tmp_path):
    rows = [
        {"id": "a|basic", "task": "evalsvc_msb_basic", "user": "Q1 {not a placeholder}"},
        {"id": "b|basic", "task": "evalsvc_msb_basic", "user": "Q2"},
        {"id": "a|safety", "task": "evalsvc_msb_safety", "user": "Q1"},
    ]
    names = lm_eval_tasks(tmp_path, rows, max_tokens=24)
    assert names == ["evalsvc_msb_basic", "evalsvc_msb_safety"]
    task = yaml.safe_load((tmp_path / "evalsvc_msb_basic.yaml").read_text())
    assert task["output_type"] == "generate_until" and task["generation_kwargs"]["max_gen_toks"] == 24
    data = [json.loads(line) for line in open(task["dataset_kwargs"]["data_files"]["test"])]
    assert [d["user"] for d in data] == ["Q1 {not a placeholder}", "Q2"]
    assert [d["id"] for d in data] == ["a|basic", "b|basic"]


def test_server_command_names_the_model_and_turns_engine_arguments_into_flags(tmp_path):
    server = VLLMServer("/m", 8001, {"dtype": "float32", "enforce_eager": True, "enable_lora": False,
                                     "max_model_len": 2048, "seed": None}, tmp_path / "log", name="judge")  # fmt: skip
    cmd = server.command()
    assert cmd[cmd.index("--served-model-name") + 1] == "judge" and cmd[cmd.index("--port") + 1] == "8001"
    assert cmd[cmd.index("--model") + 2:].count("--enforce-eager") == 1
    assert "--enable-lora" not in cmd and "--seed" not in cmd
    assert cmd[cmd.index("--max-model-len") + 1] == "2048" and cmd[cmd.index("--dtype") + 1] == "float32"
    assert server.base_url == "http://127.0.0.1:8001/v1"


def test_shim_reports_a_cpu_local_version_only_inside_the_env(tmp_path):
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    assert site_packages(tmp_path / "env") == site
    vllm_metadata_shim(tmp_path / "env", "0.32.0")
    dists = [d for d in md.distributions(path=[str(site)]) if d.metadata["Name"] == "vllm"]
    assert [d.version for d in dists] == ["0.32.0+cpu"]
