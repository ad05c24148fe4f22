"""Rows in and out of the vLLM stage (no engine needed)."""

from __future__ import annotations

import json

from evalsvc.engines.vllm import from_engine_row, to_cpu_engine_row, to_engine_row
from evalsvc.store.row import PLAN_COLUMNS


def _row(temperature: float, lora: str | None = None) -> dict:
    row = {k: None for k in PLAN_COLUMNS}
    row.update(messages_json=json.dumps([{"role": "user", "content": "hi {x}"}]), lora=lora,
               sampling=json.dumps({"temperature": temperature, "top_p": 1.0, "max_tokens": 8, "seed": 3}))
    return row


def test_engine_row_keeps_the_seed_and_sets_model_only_for_lora():
    out = to_engine_row(_row(0.7))
    assert out["sampling_params"]["seed"] == 3 and "model" not in out
    assert out["messages"] == [{"role": "user", "content": "hi {x}"}]
    assert to_engine_row(_row(0.7, lora="adapter-a"))["model"] == "adapter-a"


def test_cpu_engine_rows_drop_the_seed_only_when_sampling_randomly():
    assert "seed" not in to_cpu_engine_row(_row(0.7))["sampling_params"]
    assert to_cpu_engine_row(_row(0.0))["sampling_params"]["seed"] == 3


def test_failed_generation_becomes_an_error_record_and_length_is_detected():
    base = _row(0.0)
    failed = from_engine_row({**base, "__inference_error__": "boom", "generated_text": ""})
    assert failed["error"] == "generation: boom" and failed["response"] is None and failed["finish_reason"] == "error"
    ok = from_engine_row({**base, "__inference_error__": "", "generated_text": "x", "num_generated_tokens": 8,
                          "num_input_tokens": 5, "time_taken_llm": 0.5})
    assert ok["error"] is None and ok["finish_reason"] == "length" and ok["prompt_tokens"] == 5
