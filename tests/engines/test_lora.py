"""LoRA adapters without Ray: up-front checks (folder, config, weights, base), engine LoRA kwargs, and how rows name
each adapter for the vLLM stage (local paths, driver-downloaded s3:// adapters, a shared s3:// prefix)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalsvc.engines.lora import (
    Adapter,
    base_mismatch,
    check_adapters,
    lora_engine_args,
    row_models,
    serve_adapters,
)
from evalsvc.engines.vllm import to_engine_row, with_lora_model
from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.store.uri import filesystem

HIDDEN = 256  # the tiny model's hidden size


def write_adapter(folder: Path, *, rank: int = 8, width: int = HIDDEN, base: str | None = None,
                  config: bool = True, weights: bool = True, extra: dict | None = None) -> Path:  # fmt: skip
    """A PEFT-shaped LoRA folder (adapter_config.json + safetensors with lora_A/lora_B of the given shapes)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if config:
        doc = {"peft_type": "LORA", "r": rank, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
               "base_model_name_or_path": base, **(extra or {})}  # fmt: skip
        (folder / "adapter_config.json").write_text(json.dumps(doc))
    if weights:
        prefix = "base_model.model.model.layers.0.self_attn"
        save_file({f"{prefix}.q_proj.lora_A.weight": np.zeros((rank, width), np.float32),
                   f"{prefix}.q_proj.lora_B.weight": np.zeros((HIDDEN, rank), np.float32)},
                  str(folder / "adapter_model.safetensors"))  # fmt: skip
    return folder


def manifest(base_source: str, *adapters: str, engine_args: dict | None = None, output: str = "./runs"):
    models = [{"name": "base", "source": base_source, "engine_args": engine_args or {}}]
    models += [{"name": f"lora-{i}", "base": "base", "adapter": a} for i, a in enumerate(adapters)]
    return validate_manifest({
        "name": "lora", "models": models, "benchmarks": [{"name": "mg", "dataset": "medguard"}],
        "strategies": ["basic"], "output": {"uri": output},
    })  # fmt: skip


def test_good_adapters_are_read_with_their_ranks(tmp_path, tiny_model):
    a = write_adapter(tmp_path / "a", base=str(tiny_model))
    b = write_adapter(tmp_path / "b", rank=4, extra={"rank_pattern": {"v_proj": 12}})
    found = check_adapters(manifest(str(tiny_model), str(a), str(b)))
    assert [(x.model, x.field, x.uri, x.rank) for x in found] == [
        ("lora-0", "models.1.adapter", str(a), 8), ("lora-1", "models.2.adapter", str(b), 12)]


@pytest.mark.parametrize(
    ("make", "expect"),
    [
        (lambda p: p / "nowhere", "models.1.adapter: '{p}' does not exist: point it at a LoRA adapter folder"),
        (lambda p: write_adapter(p, config=False), "models.1.adapter: '{p}' has no adapter_config.json: point it at"),
        (lambda p: write_adapter(p, weights=False), "models.1.adapter: '{p}' has no adapter weights"),
        (lambda p: write_adapter(p) / "adapter_config.json", "is a file: point it at the adapter's folder"),
        (lambda p: write_adapter(p, extra={"peft_type": "IA3"}), "is a IA3 adapter: vLLM serves LoRA adapters only"),
        (lambda p: write_adapter(p, width=512), "the adapter reads hidden size 512 but the base has 256: point the "
                                                "entry's `base` at the model the adapter was trained on"),
    ],
)
def test_a_bad_adapter_is_a_user_error_naming_the_field_and_the_fix(tmp_path, tiny_model, make, expect):
    path = make(tmp_path / "adapter")
    with pytest.raises(UserError) as e:
        check_adapters(manifest(str(tiny_model), str(path)))
    assert expect.format(p=path) in e.value.message


def test_every_bad_adapter_is_reported_at_once(tmp_path, tiny_model):
    with pytest.raises(UserError) as e:
        check_adapters(manifest(str(tiny_model), str(tmp_path / "x"), str(write_adapter(tmp_path / "ok")),
                                str(tmp_path / "y")))  # fmt: skip
    assert e.value.message == "2 problems in the LoRA adapters"
    assert [p.split(":")[0] for p in e.value.problems] == ["models.1.adapter", "models.3.adapter"]


def test_base_mismatch_by_hub_name_only_when_obvious():
    assert base_mismatch("mistralai/Mistral-7B-v0.3", "meta-llama/Llama-3.1-8B", None, {}) == (
        "the adapter was trained on 'mistralai/Mistral-7B-v0.3', the base is 'meta-llama/Llama-3.1-8B'")
    for same in ("meta-llama/Llama-3.1-8B", "unsloth/Meta-Llama-3.1-8B", "meta-llama/llama-3.1-8b", None, "/x/y"):
        assert base_mismatch(same, "meta-llama/Llama-3.1-8B", None, {}) is None
    # a local base folder is named freely: only its config.json (hidden size) can disprove an adapter
    assert base_mismatch("mistralai/Mistral-7B-v0.3", "/models/ckpt", {"hidden_size": 4096}, {}) is None


def test_engine_args_are_sized_from_the_adapters_unless_the_user_set_them():
    ads = [Adapter("a", "models.1.adapter", "/a", 8), Adapter("b", "models.2.adapter", "/b", 12)]
    args = lora_engine_args({"dtype": "float32"}, ads, "models.0")
    assert args == {"dtype": "float32", "enable_lora": True, "max_lora_rank": 16, "max_loras": 2}
    mine = lora_engine_args({"max_lora_rank": 64, "max_loras": 1}, ads, "models.0")
    assert (mine["max_lora_rank"], mine["max_loras"]) == (64, 1)
    with pytest.raises(UserError, match=r"models\.0\.engine_args\.max_lora_rank: 8 is below rank 12 of "
                                        r"models\.2\.adapter: raise it to 16 or remove it"):  # fmt: skip
        lora_engine_args({"max_lora_rank": 8}, ads, "models.0")
    with pytest.raises(UserError, match="rank 600 is above vLLM's largest LoRA rank 512"):
        lora_engine_args({}, [Adapter("w", "models.3.adapter", "/w", 600)], "models.0")


def test_rows_name_local_adapters_by_path_and_shared_s3_adapters_by_folder():
    local = [Adapter("a", "models.1.adapter", "/data/a", 8), Adapter("b", "models.2.adapter", "/data/b", 8)]
    for one_host in (True, False):  # a local path must be visible to every engine actor either way
        assert row_models(local, None, one_host) == ({"a": "/data/a", "b": "/data/b"}, None)
    remote = [Adapter("a", "models.1.adapter", "s3://bk/ads/med-v1", 8), Adapter("b", "models.2.adapter",
              "s3://bk/ads/med-v2/", 8)]  # fmt: skip
    assert row_models(remote, None, one_host=False) == ({"a": "med-v1", "b": "med-v2"}, "s3://bk/ads")
    apart = [remote[0], Adapter("c", "models.3.adapter", "s3://bk/other/c", 8)]
    with pytest.raises(UserError, match=r"models\.1\.adapter: on a multi-node cluster the adapters of one base"):
        row_models(apart, None, one_host=False)
    with pytest.raises(UserError, match=r"models\.1\.adapter: a multi-node cluster cannot mix local and s3://"):
        row_models([remote[0], local[0]], None, one_host=False)


def test_s3_adapter_is_checked_on_s3_and_downloaded_by_the_driver_on_one_host(tmp_path, tiny_model, s3, s3_uri):
    src = write_adapter(tmp_path / "a", rank=16)
    fs, path = filesystem(f"{s3_uri}/adapters/a", s3.conn)
    for f in src.iterdir():
        with fs.open_output_stream(f"{path}/{f.name}") as out:
            out.write(f.read_bytes())
    m = manifest(str(tiny_model), f"{s3_uri}/adapters/a", str(write_adapter(tmp_path / "b")))
    serving = serve_adapters(m, "base", str(tiny_model), s3.conn, one_host=True)
    assert serving.dynamic_path is None
    assert serving.engine_args["max_lora_rank"] == 16 and serving.engine_args["max_loras"] == 2
    staged = Path(serving.row_models["lora-0"])
    assert staged.name == "lora-0" and staged.parent.name.startswith("evalsvc-lora-")
    assert {f.name: f.read_bytes() for f in staged.iterdir()} == {f.name: f.read_bytes() for f in src.iterdir()}
    assert serving.row_models["lora-1"] == str(tmp_path / "b")
    with pytest.raises(UserError, match=r"models\.1\.adapter: '.*/adapters/nope' does not exist"):
        check_adapters(manifest(str(tiny_model), f"{s3_uri}/adapters/nope"), s3.conn)


def test_every_row_of_a_lora_engine_names_what_it_runs_on():
    base = {"messages_json": "[]", "sampling": json.dumps({"temperature": 0.0}), "lora": None}
    pre = lambda row: with_lora_model(to_engine_row, "/models/base", {"med": "/ads/med"}, row)  # noqa: E731
    assert pre(base)["model"] == "/models/base"  # the engine's own model: no LoRA
    assert pre({**base, "lora": "med"})["model"] == "/ads/med"


def test_engine_spec_serves_the_base_and_its_adapters_in_one_engine(tmp_path, tiny_model):
    from evalsvc.pipeline.engines import engine_spec
    from evalsvc.plan.grid import build_plan

    a, b = write_adapter(tmp_path / "a"), write_adapter(tmp_path / "b", rank=32)
    plan = build_plan(manifest(str(tiny_model), str(a), str(b), engine_args={"dtype": "float32"}))
    assert plan.engines() == {"base": ["base", "lora-0", "lora-1"]}
    spec = engine_spec(plan, "base")
    assert spec.source == str(tiny_model) and spec.lora_dir is None
    assert spec.lora_models == {"lora-0": str(a), "lora-1": str(b)}
    assert {k: spec.engine_args[k] for k in ("dtype", "enable_lora", "max_lora_rank", "max_loras")} == {
        "dtype": "float32", "enable_lora": True, "max_lora_rank": 32, "max_loras": 2}


def test_a_run_with_a_missing_adapter_stops_before_ray_starts(tmp_path, tiny_model, monkeypatch):
    from evalsvc.pipeline import lifecycle
    from evalsvc.pipeline.run import RunOptions, execute

    joined: list[str | None] = []
    monkeypatch.setattr(lifecycle, "connect", lambda address=None: joined.append(address) or True)
    m = manifest(str(tiny_model), str(write_adapter(tmp_path / "ok")), str(tmp_path / "gone"),
                 output=str(tmp_path / "runs"))  # fmt: skip
    with pytest.raises(UserError, match=r"models\.2\.adapter: '.*/gone' does not exist"):
        execute(m, RunOptions())
    assert joined == []  # refused before the run connects to (or starts) Ray
