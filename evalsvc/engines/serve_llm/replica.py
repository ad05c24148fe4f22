"""The judge's Serve replica: Ray Serve LLM's `LLMServer` with one method that takes and returns plain dicts.

This module runs inside the replica only (Serve loads it by name from the LLMConfig's `server_cls`). Callers
(judge and guard stage actors) send an OpenAI chat-completions body as a dict and get the first choice back as a
dict, so they never import vLLM's request and response classes (and with them torch: about 10 s and 780 MB per
caller process). The requests are built here, in the process that already holds vLLM.
"""

from __future__ import annotations

from ray.serve.llm import LLMServer
from ray.serve.llm.openai_api_models import ChatCompletionRequest

from evalsvc.engines.chat import no_choice_error


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

