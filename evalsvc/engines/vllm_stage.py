"""The candidate engine's actor class: ray.data.llm's vLLM stage, asking the engine for final outputs only and
rendering each conversation's chat template itself.

ray.data.llm sends each request with vLLM's default output kind (cumulative): every engine step hands each request
in flight a new output with its whole text so far, and the stage's loop wakes for each one only to keep the last.
At 128 requests × 256 tokens that is 32,768 outputs built and awaited in the actor, on the cores the engine needs.
The stage reads nothing but the finished output, so asking for that one alone changes no answer.

ray.data.llm renders chat templates in a stage of its own: one more actor per run that imports Ray Data, torch and
transformers (about 6 s of CPU here) to load the tokenizer the engine's process loads anyway. The template is
rendered here instead, the way that stage renders it (a generation prompt after a user turn, the last message
continued otherwise), so every prompt is the same text.

Imported by the engine actor only (and by evalsvc.engines.vllm when it builds the processor); Ray 2.60's stage.
"""

from __future__ import annotations

from typing import Any

from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMEngineStageUDF as _RayEngineStage


class vLLMEngineStageUDF(_RayEngineStage):  # noqa: N801 - the class name Ray's actor table and evalsvc's watchers know
    def __init__(self, *args, chat_template: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        render = ChatRenderer(self.llm.model_source, chat_template, bool(self.engine_kwargs.get("trust_remote_code")))
        prepare = self.llm._prepare_llm_request

        async def rendered_final_only(row: dict):
            if row.get("prompt") is None and row.get("tokenized_prompt") is None and "messages" in row:
                row["prompt"] = render(row["messages"])
            request = await prepare(row)
            final_output_only(request.params)
            return request

        self.llm._prepare_llm_request = rendered_final_only


class ChatRenderer:
    """messages → the prompt text, with the checkpoint's chat template (or `chat_template`); loads on first use."""

    def __init__(self, source: str, chat_template: str | None = None, trust_remote_code: bool = False):
        self.source, self.chat_template, self.trust_remote_code = source, chat_template, trust_remote_code
        self._processor = None

    def __call__(self, messages: Any) -> str:
        if self._processor is None:
            from transformers import AutoProcessor

            self._processor = AutoProcessor.from_pretrained(self.source, trust_remote_code=self.trust_remote_code)
        conversation = messages.tolist() if hasattr(messages, "tolist") else list(messages)  # Arrow gives arrays
        generation = conversation[-1]["role"] == "user"
        return self._processor.apply_chat_template(conversation, tokenize=False, chat_template=self.chat_template,
                                                   add_generation_prompt=generation,
                                                   continue_final_message=not generation)  # fmt: skip


def final_output_only(params) -> None:
    """Sampling parameters that ask for the finished output alone (pooling parameters have no output kind)."""
    kind = getattr(params, "output_kind", None)
    if kind is not None:
        params.output_kind = type(kind).FINAL_ONLY
