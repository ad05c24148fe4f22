"""`evalsvc plan`: the cell table, engines and totals; `--json` for the example sweep with hand-computed totals.

Runs in-process through the console script's entry point, plus the sweep once through the installed script.
"""

from __future__ import annotations

import json
from pathlib import Path

from evalsvc.benchmarks.registry import MEDGUARD, MEDHARM

from .test_validate import BAD, MANIFESTS, data_env, run_process  # noqa: F401  (fixtures)

MSB_TEST = 900  # MedSafetyBench test split: 9 principles × 50 GPT-4 requests + 450 jailbroken Llama-2 ones
N_GUARD = MEDGUARD.splits["sample"]
N_HARM = MEDHARM.splits["sample"]


def sweep_totals() -> dict:
    models, strategies = 5, 4
    generations = models * (MSB_TEST + N_GUARD + N_HARM) * strategies
    mcq = models * N_GUARD * strategies
    return {
        "cells": models * 3 * strategies,
        "models": models,
        "items": MSB_TEST + N_GUARD + N_HARM,
        "generations": generations,
        "judge_calls": generations - mcq,
        "mcq_parsed": mcq,
        "engine_loads": 2 + 2 + 2 + 1 + 2,  # replicas of each checkpoint; gemma spans 2 GPUs in one replica
        "max_completion_tokens": generations * 512,
    }


def test_sweep_json_totals_by_hand(monkeypatch, cli):
    for var in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)  # planning needs neither credentials nor a GPU
    code, out, err = cli("plan", str(MANIFESTS / "medsafety-sweep.yaml"), "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    expected = sweep_totals()
    assert {k: doc["totals"][k] for k in expected} == expected
    assert doc["totals"]["est_prompt_tokens"] > 0
    assert list(doc["engines"]) == ["llama-3.1-8b", "mistral-7b-v0.3", "qwen2.5-7b", "gemma-2-9b", "med42-8b"]
    assert all(served == [engine] for engine, served in doc["engines"].items())
    assert doc["strategies"] == ["basic", "cot", "safety", "cot_safety"]
    assert {b["name"]: (b["kind"], b["n_items"]) for b in doc["benchmarks"]} == {
        "medsafetybench": ("harm", MSB_TEST), "medguard": ("mcq", N_GUARD), "medharm": ("high_risk", N_HARM)
    }
    assert len({c["cell_id"] for c in doc["cells"]}) == 60
    assert all(c["judge_calls"] == (0 if c["benchmark"] == "medguard" else c["generations"]) for c in doc["cells"])


def test_quickstart_table(cli):
    code, out, err = cli("plan", str(MANIFESTS / "quickstart.yaml"))
    assert (code, err) == (0, "")
    assert "plan: quickstart" in out
    rows = [line for line in out.splitlines() if "│ smollm2-135m" in line]
    assert len(rows) == 3
    for strategy, row in zip(("basic", "cot", "safety"), rows):
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[1:] == ["smollm2-135m", "msb", "harm", strategy, "18", "18", "18"]
    assert "engine smollm2-135m (evalsvc://smollm2, 1 replica(s)) serves: smollm2-135m" in out
    assert "totals: 3 cells, 54 generations, 54 judge calls, 0 MCQ answers parsed without a judge, 1 engine load(s)" in out


LORA_GRID = """
name: lora-grid
models:
  - {name: base, source: org/base, replicas: 3}
  - {name: base-medical, base: base, adapter: ./adapters/medical}
benchmarks:
  - {name: mg, dataset: medguard, select: {limit: 4}}
strategies: [basic, cot]
output: {uri: ./runs}
"""


def test_table_shows_lora_on_its_base_engine(tmp_path: Path, cli):
    (tmp_path / "grid.yaml").write_text(LORA_GRID)
    code, out, err = cli("plan", str(tmp_path / "grid.yaml"))
    assert (code, err) == (0, "")
    assert "engine base (org/base, 3 replica(s), spread over nodes) serves: base, base-medical (LoRA)\n" in out
    assert f"  LoRA base-medical: {tmp_path / 'adapters' / 'medical'}\n" in out  # relative to the manifest
    assert "totals: 4 cells, 16 generations, 0 judge calls, 16 MCQ answers parsed without a judge, 3 engine load(s)" in out


def test_table_and_json_agree(tmp_path: Path, cli):
    (tmp_path / "grid.yaml").write_text(LORA_GRID)
    _, out, _ = cli("plan", str(tmp_path / "grid.yaml"), "--json")
    doc = json.loads(out)
    _, table, _ = cli("plan", str(tmp_path / "grid.yaml"))
    assert doc["engines"] == {"base": ["base", "base-medical"]}
    for cell in doc["cells"]:
        assert cell["cell_id"] in table
        assert (cell["n_items"], cell["generations"], cell["judge_calls"]) == (4, 4, 0)


PLACED_JUDGE = """
name: placed
models: [{name: m, source: org/m}]
benchmarks: [{name: msb, dataset: medsafetybench, select: {limit: 2}}]
strategies: [basic]
judge: {model: {source: org/judge, placement: {resources: {judge_node: 1}, accelerator_type: L40S}}}
output: {uri: ./runs}
"""


def test_the_judge_placement_is_shown_and_checked(tmp_path: Path, cli):
    (tmp_path / "grid.yaml").write_text(PLACED_JUDGE)
    code, out, err = cli("plan", str(tmp_path / "grid.yaml"))
    assert (code, err) == (0, "")
    assert "placement of judge: resources {'judge_node': 1.0}, accelerator_type L40S\n" in out
    _, out, _ = cli("plan", str(tmp_path / "grid.yaml"), "--json")
    assert json.loads(out)["placement"] == {"judge": {"resources": {"judge_node": 1.0}, "accelerator_type": "L40S"}}
    (tmp_path / "bad.yaml").write_text(PLACED_JUDGE.replace("judge_node: 1", "GPU: 1"))
    code, _, err = cli("plan", str(tmp_path / "bad.yaml"))
    assert code == 2 and "judge.model.placement.resources" in err and "list only custom resources" in err


def test_plan_of_a_bad_manifest_exits_2(cli):
    code, out, err = cli("plan", str(BAD / "judge-model-and-url.yaml"), "--json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "error: judge: set exactly one of `model`" in err


def test_help_has_examples(cli):
    code, out, _ = cli("plan", "--help")
    assert code == 0 and "evalsvc plan manifests/quickstart.yaml" in out and "--json" in out


def test_console_script_plans_the_sweep(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "plan-must-not-print-this")  # set credentials never reach the plan
    proc = run_process("plan", str(MANIFESTS / "medsafety-sweep.yaml"), "--json")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout)["totals"]["generations"] == sweep_totals()["generations"]
    assert "plan-must-not-print-this" not in proc.stdout
