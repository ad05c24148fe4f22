"""Rows in and out of the vLLM stage (no engine needed)."""

from __future__ import annotations

import json

from evalsvc.engines.vllm import from_engine_row, settle_engine_row, to_cpu_engine_row, to_engine_row
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


TOO_LONG = ("VLLMValidationError: This model's maximum context length is 1024 tokens. However, your prompt contains "
            "1283 input tokens, which exceeds this limit even without any output tokens. Please reduce the length of "
            "the input prompt. (parameter=input_tokens, value=1283)")  # as vllm 0.32 words it


def test_a_row_the_engine_failed_reaches_the_record_with_its_reason():
    """ray.data.llm passes a failed row around the postprocess: the whole internal row, no `error`, no `response`."""
    internal = {**to_engine_row(_row(0.0)), "prompt": "<|im_start|>user ...", "tokenized_prompt": list(range(1283)),
                "num_input_tokens": 0, "generated_text": None, "time_taken_llm": -1, "request_id": -1,
                "__inference_error__": TOO_LONG}  # fmt: skip
    rec = settle_engine_row(internal)
    assert set(rec) == {*PLAN_COLUMNS, "error", "response", "prompt_tokens", "completion_tokens", "latency_s",
                        "finish_reason"}  # fmt: skip
    assert rec["response"] is None and rec["finish_reason"] == "error"
    assert rec["error"] == f"generation: {TOO_LONG}" and "1283" in rec["error"] and "1024" in rec["error"]
    assert rec["prompt_tokens"] == 1283 and rec["latency_s"] is None
    # without the tokenize stage's output the count comes from the engine's message (either wording of vLLM's)
    del internal["tokenized_prompt"]
    assert settle_engine_row(internal)["prompt_tokens"] == 1283
    bounded = TOO_LONG.replace("contains 1283", "contains at least 1025")  # a text prompt, tokenized up to the limit
    assert settle_engine_row({**internal, "__inference_error__": bounded})["prompt_tokens"] == 1025
    older = "VLLMValidationError: The decoder prompt (length 1400) is longer than the maximum model length of 1024."
    assert settle_engine_row({**internal, "__inference_error__": older})["prompt_tokens"] == 1400
    assert settle_engine_row({**internal, "__inference_error__": "RuntimeError: boom"})["prompt_tokens"] is None


def test_a_generated_row_passes_through_without_the_error_column():
    done = {**from_engine_row({**_row(0.0), "generated_text": "B", "num_generated_tokens": 1}),
            "__inference_error__": ""}  # fmt: skip
    rec = settle_engine_row(done)
    assert "__inference_error__" not in rec and rec["response"] == "B" and rec["error"] is None
