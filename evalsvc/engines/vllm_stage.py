"""The candidate engine's actor class: ray.data.llm's vLLM stage, asking the engine for final outputs only.

ray.data.llm sends each request with vLLM's default output kind (cumulative): every engine step hands each request
in flight a new output with its whole text so far, and the stage's loop wakes for each one only to keep the last.
At 128 requests × 256 tokens that is 32,768 outputs built and awaited in the actor, on the cores the engine needs.
The stage reads nothing but the finished output, so asking for that one alone changes no answer.

Imported by the engine actor only (and by evalsvc.engines.vllm when it builds the processor); Ray 2.60's stage.
"""

from __future__ import annotations

from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMEngineStageUDF as _RayEngineStage


class vLLMEngineStageUDF(_RayEngineStage):  # noqa: N801 - the class name Ray's actor table and evalsvc's watchers know
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        prepare = self.llm._prepare_llm_request

        async def final_only(row: dict):
            request = await prepare(row)
            final_output_only(request.params)
            return request

        self.llm._prepare_llm_request = final_only


def final_output_only(params) -> None:
    """Sampling parameters that ask for the finished output alone (pooling parameters have no output kind)."""
    kind = getattr(params, "output_kind", None)
    if kind is not None:
        params.output_kind = type(kind).FINAL_ONLY
