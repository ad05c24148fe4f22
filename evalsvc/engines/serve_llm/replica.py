"""The judge's Serve replica: Ray Serve LLM's `LLMServer` with one method that takes and returns plain dicts.

This module runs inside the replica only (Serve loads it by name from the LLMConfig's `server_cls`). Callers
(judge and guard stage actors) send an OpenAI chat-completions body as a dict and get the first choice back as a
dict, so they never import vLLM's request and response classes (and with them torch: about 10 s and 780 MB per
caller process). The requests are built here, in the process that already holds vLLM.
"""

from __future__ import annotations

import os

import torch
from ray.llm._internal.common.callbacks.base import CallbackBase
from ray.llm._internal.serve.engines.vllm.vllm_engine import VLLMEngine
from ray.serve.llm import LLMServer
from ray.serve.llm.openai_api_models import ChatCompletionRequest

from evalsvc.engines.chat import no_choice_error
from evalsvc.engines.vllm import one_worker_threads

_start_engine = VLLMEngine._start_async_llm_engine


def _start_engine_in_one_process(self, engine_args, vllm_config, placement_group):
    """Ray Serve LLM runs a CPU engine with vLLM's multiprocess executor: besides the engine core, one more process
    that imports torch and vLLM again (about 10 s and 1.8 GB here) to hold a single worker. Any engine given that
    executor for one worker holds it in its engine core instead (vLLM's uniprocess executor); multi-worker engines
    are left as they are.

    The engine core then gets the OpenMP settings the executor would have given its worker (thread count and
    placement from VLLM_CPU_OMP_THREADS_BIND): without them it computes on one thread, the OMP_NUM_THREADS Ray sets
    for a one-CPU actor."""
    parallel = vllm_config.parallel_config
    if parallel.distributed_executor_backend != "mp" or parallel.world_size != 1:
        return _start_engine(self, engine_args, vllm_config, placement_group)
    parallel.distributed_executor_backend = "uni"
    with one_worker_threads(vllm_config):  # the engine core's process is spawned inside, and reads them at import
        return _start_engine(self, engine_args, vllm_config, placement_group)


VLLMEngine._start_async_llm_engine = _start_engine_in_one_process


class DictChatServer(LLMServer):
    async def choice(self, body: dict) -> dict:
        """The first choice of a chat completion for `body`: its message and, when asked for, its logprobs."""
        stream = await self.chat(ChatCompletionRequest(**body))
        async for out in stream:
            data = out.model_dump() if hasattr(out, "model_dump") else out
            if isinstance(data, dict) and data.get("choices"):
                return data["choices"][0]
            raise no_choice_error(data)
        raise RuntimeError("judge deployment answered nothing")


class SourceOnNode(CallbackBase):
    """For a model that is a folder or a hub id (nothing for Ray Serve LLM to fetch from cloud storage): skip its node
    initialisation, a Ray task per node that only imports torch and transformers (about 9 s of CPU per app here) to
    return the source unchanged; vLLM reads the folder, or downloads from the hub, itself."""

    async def on_before_node_init(self) -> None:
        os.makedirs(os.path.join(os.path.dirname(torch.hub.get_dir()), "kernels"), exist_ok=True)  # as the task does
        self.ctx.run_init_node = False
