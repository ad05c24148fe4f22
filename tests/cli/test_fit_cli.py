"""`validate` and `plan` warn about prompts that cannot fit max_model_len when the model's tokenizer is at hand."""

from __future__ import annotations

import json

import yaml

from tests.engines.test_fit import items_file

from .test_validate import data_env  # noqa: F401  (fixtures)


def manifest(tmp_path, model_dir) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({
        "name": "fit", "models": [{"name": "tiny", "source": str(model_dir),
                                   "engine_args": {"dtype": "float32", "max_model_len": 1024}}],
        "benchmarks": [{"name": "mine", "path": str(items_file(tmp_path)), "format": "mcq"}],
        "strategies": ["basic"], "sampling": {"max_tokens": 16}, "output": {"uri": str(tmp_path / "out")},
        "resources": {"gpus_per_replica": 0},
    }))  # fmt: skip
    return str(path)


def test_validate_names_the_item_that_cannot_fit(tmp_path, tiny_model, cli):
    code, out, err = cli("validate", manifest(tmp_path, tiny_model))
    assert code == 0, err  # a warning, not an error: the run records the item as a generation error
    text = " ".join(out.split())
    assert "valid: 1 cells, 6 generations" in text
    assert "warning: tiny / mine / basic: 1 prompt(s) cannot fit max_model_len 1024: long (" in text


def test_plan_json_lists_the_problem(tmp_path, tiny_model, cli):
    code, out, err = cli("plan", manifest(tmp_path, tiny_model), "--json")
    assert code == 0, err
    (problem,) = json.loads(out)["prompt_fit"]["problems"]
    assert problem["limit"] == 1024 and problem["too_long"][0]["item_id"] == "long"
    assert problem["too_long"][0]["prompt_tokens"] > 1024
