"""The engine actor's chat rendering: the same prompt text ray.data.llm's chat-template stage renders."""

from __future__ import annotations

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
