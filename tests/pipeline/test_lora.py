"""LoRA end to end: the tiny base and two peft adapters of it (one local, one on S3) run in one vLLM engine load on
local Ray; records of all three land on the S3 server, and the adapters change what the model says."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn, filesystem
from tests.pipeline.conftest import engine_actors, env_vars

pytestmark = pytest.mark.slow

ITEMS = 4
STRATEGIES = ["basic", "safety"]


def make_adapter(base: Path, out: Path, seed: int) -> Path:
    """A rank-8 LoRA on the attention projections with random non-zero B (peft's default B = 0 would be a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                        init_lora_weights=False)  # fmt: skip
    get_peft_model(model, config).save_pretrained(out)
    return out


def upload(folder: Path, uri: str, conn: S3Conn) -> str:
    fs, path = filesystem(uri, conn)
    for f in folder.iterdir():
        with fs.open_output_stream(f"{path}/{f.name}") as stream:
            stream.write(f.read_bytes())
    return uri


@pytest.fixture(scope="module")
def lora_run(ray_local, tiny_model, s3, tmp_path_factory):
    """Base + a local adapter + an s3:// adapter, MedGuard × 2 strategies, records on S3; run once per module."""
    work = tmp_path_factory.mktemp("lora")
    env = s3.env()
    with env_vars(env):
        local = make_adapter(tiny_model, work / "med-a", seed=1)
        remote = upload(make_adapter(tiny_model, work / "med-b", seed=2), f"s3://evalsvc-test/lora-{os.getpid()}/med-b",
                        s3.conn)  # fmt: skip
        engine = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
        manifest = validate_manifest({
            "name": "lora-grid",
            "models": [{"name": "tiny", "source": str(tiny_model), "engine_args": engine},
                       {"name": "tiny-med-a", "base": "tiny", "adapter": str(local)},
                       {"name": "tiny-med-b", "base": "tiny", "adapter": remote}],
            "benchmarks": [{"name": "mg", "dataset": "medguard", "select": {"limit": ITEMS}}],
            "strategies": STRATEGIES,
            "sampling": {"max_tokens": 12, "temperature": 0.0},
            "output": {"uri": f"s3://evalsvc-test/lora-{os.getpid()}/out", "cache": False,
                       "s3": {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                              "endpoint_url": "${AWS_ENDPOINT_URL_S3}"}},
            "resources": {"batch_size": 8},
        })  # fmt: skip
        before = engine_actors()
        result = execute(manifest, RunOptions())
        engines = engine_actors() - before
        conn = S3Conn.from_options(manifest.output.s3)
        records = read_records(RunLayout(manifest.output.uri, result.run_id).records, conn,
                               columns=("model", "strategy", "item_id", "response", "error")).to_pylist()
        yield result, records, engines


def test_base_and_adapters_are_served_by_one_engine_load(lora_run):
    result, records, engines = lora_run
    assert result.state == "succeeded"
    assert len(engines) == 1  # one vLLM engine actor for the base and both adapters
    assert Counter(r["model"] for r in records) == {m: ITEMS * len(STRATEGIES) for m in ("tiny", "tiny-med-a",
                                                                                       "tiny-med-b")}
    assert [r for r in records if r["error"] is not None] == []


def test_each_adapter_changes_the_greedy_answers(lora_run):
    _, records, _ = lora_run
    answers = {(r["model"], r["strategy"], r["item_id"]): r["response"] for r in records}
    keys = {(s, i) for _, s, i in answers}
    for adapter in ("tiny-med-a", "tiny-med-b"):
        assert any(answers[(adapter, s, i)] != answers[("tiny", s, i)] for s, i in keys), adapter
    assert any(answers[("tiny-med-a", s, i)] != answers[("tiny-med-b", s, i)] for s, i in keys)
