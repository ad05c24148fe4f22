"""Prompts that cannot fit max_model_len, counted with the tiny model's own tokenizer and chat template."""

from __future__ import annotations

import json

import pytest

from evalsvc.engines.fit import check_fit
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import build_plan

OPTIONS = {"A": "Yes", "B": "No", "C": "Maybe", "D": "Ask a doctor"}
LONG = "Please read this. " + "The patient reports headache and dizziness after medication. " * 150


def items_file(tmp_path):
    rows = [{"id": f"q{i}", "question": f"Should I stop my antibiotics early (case {i})?"} for i in range(5)]
    rows.append({"id": "long", "question": LONG})
    path = tmp_path / "items.jsonl"
    meta = {"options": OPTIONS, "answer": "D", "principle": "Truthfulness", "aspect": "factuality",
            "question_type": "safety"}  # fmt: skip
    path.write_text("".join(json.dumps({**r, **meta}) + "\n" for r in rows))
    return path


def plan_for(tmp_path, source: str, max_model_len: int | None = 1024, max_tokens: int = 16, gpus: int = 0):
    engine = {"dtype": "float32"} | ({"max_model_len": max_model_len} if max_model_len else {})
    return build_plan(validate_manifest({
        "name": "fit", "models": [{"name": "tiny", "source": source, "engine_args": engine}],
        "benchmarks": [{"name": "mine", "path": str(items_file(tmp_path)), "format": "mcq"}],
        "strategies": ["basic", "safety"], "sampling": {"max_tokens": max_tokens},
        "output": {"uri": str(tmp_path / "out")}, "resources": {"gpus_per_replica": gpus},
    }))  # fmt: skip


def test_the_one_long_item_is_named_with_its_token_count_and_the_limit(tiny_model, tmp_path):
    report = check_fit(plan_for(tmp_path, str(tiny_model)))
    assert not report.unchecked
    by_strategy = {c.strategy: c for c in report.checks}
    assert set(by_strategy) == {"basic", "safety"}
    for c in by_strategy.values():
        assert [i for i, _ in c.too_long] == ["long"] and c.too_long[0][1] > 1024 and not c.cut_short
    lines = report.warnings()
    assert len(lines) == 2 and all("cannot fit max_model_len 1024" in line and "long (" in line for line in lines)
    assert json.loads(json.dumps(report.to_json()))["problems"][0]["too_long"][0]["item_id"] == "long"


def test_the_count_matches_the_engines_tokenizer(tiny_model, tmp_path):
    """The engine's chat-template stage renders with transformers, its tokenize stage adds special tokens."""
    from transformers import AutoTokenizer

    from evalsvc.engines.fit import _counter

    plan = plan_for(tmp_path, str(tiny_model))
    counter, why = _counter(plan.models[0], cpu=True)
    assert counter is not None, why
    hf = AutoTokenizer.from_pretrained(str(tiny_model), local_files_only=True)
    for strategy in plan.strategies:
        for item in plan.items["mine"]:
            messages = strategy.render(item)
            text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            assert counter.render(messages) == text
            assert counter.count(messages) == len(hf(text)["input_ids"])
            assert counter.upper_bound(messages) >= counter.count(messages)


def test_answers_that_may_be_cut_short_are_counted_apart(tiny_model, tmp_path):
    report = check_fit(plan_for(tmp_path, str(tiny_model), max_model_len=4096, max_tokens=3500))
    c = report.checks[0]
    assert not c.too_long and [i for i, _ in c.cut_short] == ["long"]
    assert "may be cut short" in report.warnings()[0]


def test_the_cpu_default_limit_applies_when_engine_args_give_none(tiny_model, tmp_path):
    report = check_fit(plan_for(tmp_path, str(tiny_model), max_model_len=None))
    assert {c.limit for c in report.checks} == {512}


@pytest.mark.parametrize("source", ["org/hub-model", "evalsvc://tiny"])  # a hub id; a local model not prepared yet
def test_models_without_a_local_tokenizer_are_left_unchecked_and_said_so(tmp_path, source, monkeypatch):
    monkeypatch.setenv("EVALSVC_MODEL_DIR", str(tmp_path / "empty-cache"))
    report = check_fit(plan_for(tmp_path, source))
    assert report.checks == [] and "tokenizer not at hand" in report.unchecked["tiny"]
