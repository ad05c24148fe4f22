"""The engine actor: the same prompt text ray.data.llm's chat-template stage renders, and a CPU engine without a
worker process of its own."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the module subclasses ray.data.llm's vLLM stage: importing it imports vLLM

ASK = [{"role": "system", "content": "Be careful."}, {"role": "user", "content": "Is 5 g of paracetamol safe?"}]
PREFILL = [*ASK, {"role": "assistant", "content": "No. The"}]


def test_a_user_turn_gets_the_generation_prompt_and_a_prefill_is_continued(tiny_model):
    from transformers import AutoTokenizer

    from evalsvc.engines.vllm_stage import ChatRenderer

    hf = AutoTokenizer.from_pretrained(str(tiny_model))
    render = ChatRenderer(str(tiny_model))
    assert render(ASK) == hf.apply_chat_template(ASK, tokenize=False, add_generation_prompt=True)
    assert render(np.array(ASK, dtype=object)) == render(ASK)  # how a row's messages arrive from Arrow
    continued = render(PREFILL)
    assert continued == hf.apply_chat_template(PREFILL, tokenize=False, continue_final_message=True)
    assert continued.endswith("No. The")


def test_a_models_own_chat_template_replaces_the_checkpoints(tiny_model):
    from evalsvc.engines.vllm_stage import ChatRenderer

    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}"
    assert ChatRenderer(str(tiny_model), template)(ASK) == "<system>Be careful.<user>Is 5 g of paracetamol safe?<a>"


def test_a_one_worker_cpu_engine_is_built_with_its_worker_in_the_engine_core(one_worker_config):
    """vLLM's CPU platform turns a uniprocess request into its multiprocess executor; while the engine actor builds
    its engine, the executor chosen is the uniprocess one, and the engine core is spawned with the worker's threads."""
    from vllm.v1.executor.abstract import Executor
    from vllm.v1.executor.uniproc_executor import UniProcExecutor

    from evalsvc.engines.vllm import engines_hold_their_worker

    original = Executor.get_class
    with engines_hold_their_worker():
        assert Executor.get_class(one_worker_config) is UniProcExecutor
        assert os.environ["OMP_NUM_THREADS"] == "2"  # AsyncLLM spawns its engine core in here
    assert os.environ["OMP_NUM_THREADS"] == "1" and Executor.get_class is original


def test_the_engine_actor_builds_its_engine_inside_that_choice(monkeypatch):
    from vllm.v1.executor.abstract import Executor

    from evalsvc.engines import vllm_stage

    original, seen = Executor.get_class, {}

    def ray_init(self, *args, **kwargs):  # ray.data.llm's stage builds the engine in its __init__
        seen["chosen by evalsvc"] = Executor.get_class is not original
        raise RuntimeError("built")

    monkeypatch.setattr(vllm_stage._RayEngineStage, "__init__", ray_init)
    with pytest.raises(RuntimeError, match="built"):
        vllm_stage.vLLMEngineStageUDF()
    assert seen == {"chosen by evalsvc": True} and Executor.get_class is original
