"""Content keys: a record key changes exactly when the candidate's output could change, and is stable otherwise.

Covers digest determinism, the model fingerprint's choice of engine arguments, record/judgement keys and cell ids.
"""

from __future__ import annotations

import re

import pytest

from evalsvc.plan.keys import OUTPUT_ENGINE_ARGS, cell_id, digest, model_fingerprint, record_key

MESSAGES = [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "How do I dose insulin?"}]
SAMPLING = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 256, "seed": 0}
ITEM = ("msb", "msb/test/gpt4/p1/0000")
FP_ARGS = {
    "source": "org/model", "revision": "abc123", "engine_args": {"dtype": "bfloat16"}, "chat_template": None, "adapter": None
}


def fp(**changes) -> str:
    return model_fingerprint(**{**FP_ARGS, **changes})


def test_digest_is_deterministic_hex_and_ignores_key_order():
    a = digest({"x": 1, "y": [1, 2], "z": {"b": 2, "a": 1}})
    b = digest({"z": {"a": 1, "b": 2}, "y": [1, 2], "x": 1})
    assert a == b
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    assert len(digest("x", 8)) == 8
    assert digest({"y": [2, 1]}) != digest({"y": [1, 2]})  # list order is content


def test_digest_of_non_ascii_text_is_stable():
    assert digest({"t": "Fieber über 39 °C — was tun?"}) == digest({"t": "Fieber über 39 °C — was tun?"})
    assert digest({"t": "über"}) != digest({"t": "uber"})


@pytest.mark.parametrize(
    "change",
    [
        {"source": "org/other-model"},
        {"revision": "def456"},
        {"revision": None},
        {"engine_args": {"dtype": "float16"}},
        {"engine_args": {"dtype": "bfloat16", "quantization": "awq"}},
        {"engine_args": {"dtype": "bfloat16", "max_model_len": 2048}},
        {"engine_args": {"dtype": "bfloat16", "tokenizer": "org/tok"}},
        {"engine_args": {"dtype": "bfloat16", "trust_remote_code": True}},
        {"chat_template": "{{ messages }}"},
        {"adapter": "s3://bucket/adapters/a"},
    ],
    ids=lambda c: "+".join(f"{k}={v}" for k, v in c.items()),
)
def test_fingerprint_changes_with_what_changes_output(change):
    assert fp(**change) != fp()


@pytest.mark.parametrize(
    "engine_args",
    [
        {"dtype": "bfloat16", "tensor_parallel_size": 4},
        {"dtype": "bfloat16", "gpu_memory_utilization": 0.5},
        {"dtype": "bfloat16", "enforce_eager": True},
        {"dtype": "bfloat16", "enable_lora": True, "max_num_seqs": 64},
        {"dtype": "bfloat16", "quantization": None},  # an explicit None is the same as leaving it out
    ],
)
def test_fingerprint_ignores_speed_only_engine_args(engine_args):
    assert fp(engine_args=engine_args) == fp()


def test_output_engine_args_are_the_documented_ones():
    # Parallelism and memory settings must never split keys: a re-run on other hardware reuses records.
    assert "tensor_parallel_size" not in OUTPUT_ENGINE_ARGS and "gpu_memory_utilization" not in OUTPUT_ENGINE_ARGS
    assert {"dtype", "quantization", "max_model_len"} <= set(OUTPUT_ENGINE_ARGS)


@pytest.mark.parametrize(
    ("messages", "sampling", "index"),
    [
        ([{"role": "user", "content": "How do I dose insulin?"}], SAMPLING, 0),  # no system message
        ([*MESSAGES[:1], {"role": "user", "content": "How do I dose insulin? "}], SAMPLING, 0),  # one space
        (MESSAGES, {**SAMPLING, "temperature": 0.7}, 0),
        (MESSAGES, {**SAMPLING, "top_p": 0.9}, 0),
        (MESSAGES, {**SAMPLING, "max_tokens": 512}, 0),
        (MESSAGES, {**SAMPLING, "seed": 1}, 0),
        (MESSAGES, SAMPLING, 1),
    ],
    ids=["system", "prompt-text", "temperature", "top_p", "max_tokens", "seed", "sample-index"],
)
def test_record_key_changes_with_prompt_sampling_and_sample(messages, sampling, index):
    base = record_key(fp(), MESSAGES, SAMPLING, 0, ITEM)
    assert record_key(fp(), messages, sampling, index, ITEM) != base


def test_record_key_changes_with_model_and_is_stable():
    assert record_key(fp(), MESSAGES, SAMPLING, 0, ITEM) == record_key(fp(), [dict(m) for m in MESSAGES], dict(SAMPLING), 0, ITEM)
    assert record_key(fp(revision="other"), MESSAGES, SAMPLING, 0, ITEM) != record_key(fp(), MESSAGES, SAMPLING, 0, ITEM)
    assert record_key(fp(engine_args={"dtype": "bfloat16", "tensor_parallel_size": 2}), MESSAGES, SAMPLING, 0, ITEM) == (
        record_key(fp(), MESSAGES, SAMPLING, 0, ITEM)
    )


def test_record_key_keeps_items_with_the_same_prompt_apart():
    """Items are a benchmark's unit: two items (or two benchmarks) rendering the same prompt are two records."""
    base = record_key(fp(), MESSAGES, SAMPLING, 0, ITEM)
    assert record_key(fp(), MESSAGES, SAMPLING, 0, ("msb", "msb/test/gpt4/p1/0001")) != base
    assert record_key(fp(), MESSAGES, SAMPLING, 0, ("msb-copy", ITEM[1])) != base
    # structural, not concatenated: ("a/b", "c") and ("a", "b/c") differ
    assert record_key(fp(), MESSAGES, SAMPLING, 0, ("a/b", "c")) != record_key(fp(), MESSAGES, SAMPLING, 0, ("a", "b/c"))


def test_cell_id_is_short_stable_and_order_sensitive():
    cid = cell_id("llama", "msb", "basic")
    assert re.fullmatch(r"c[0-9a-f]{11}", cid)
    assert cid == cell_id("llama", "msb", "basic")
    ids = {cell_id(*p) for p in [("llama", "msb", "basic"), ("msb", "llama", "basic"), ("llama", "msb", "cot")]}
    assert len(ids) == 3
    # names are joined structurally, not by concatenation: ("a-b", "c") and ("a", "b-c") differ
    assert cell_id("a-b", "c", "s") != cell_id("a", "b-c", "s")
