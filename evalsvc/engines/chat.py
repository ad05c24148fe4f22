"""How the judge stage reaches a judge: the in-cluster Serve handle or an external OpenAI-compatible URL.

Both take an OpenAI chat-completions body and return the answer text; retries with backoff live here.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")
# Worth another try: rate limits, timeouts, conflicts and server-side failures; other 4xx answers are final.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class RequestRefused(RuntimeError):
    """The server refused the request itself (a 4xx answer such as a prompt longer than the model's context):
    sending it again gets the same answer, so it is never retried."""


def refused(status: int | None) -> bool:
    """True for an HTTP status that says the request, not the server, is at fault."""
    return status is not None and 400 <= status < 500 and status not in RETRY_STATUS


class ChatClient(Protocol):
    async def chat(self, body: dict) -> str: ...


class ChoiceClient(ChatClient, Protocol):
    """A client that also returns the whole first choice (message and, when asked for, token log-probabilities)."""

    async def choice(self, body: dict) -> dict: ...


@dataclass(frozen=True)
class ChatTarget:
    """Where the judge is; picklable, built by the driver and sent to the judge actors."""

    model_id: str  # the `model` of each request
    app_name: str | None = None  # Serve transport when set
    url: str | None = None  # HTTP transport: OpenAI-compatible base URL ending in /v1
    api_key_env: str | None = None  # name of the env var holding the key (the key never travels in config)
    label: str = ""  # judge model as recorded (source or URL + model name)
    gate: str | None = None  # named start-up gate actor when the app is still starting in the background


def no_choice_error(answer) -> RuntimeError:
    """The error for an OpenAI-style answer without choices: a `RequestRefused` when the server refused the request
    itself (its error code a final 4xx, e.g. a prompt longer than the model's context)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    kind = RequestRefused if isinstance(code, int) and refused(code) else RuntimeError
    return kind(f"judge deployment answered without choices: {str(answer)[:300]}")


class HttpChat:
    def __init__(self, url: str, api_key: str | None, timeout_s: float = 300.0):
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)

    async def chat(self, body: dict) -> str:
        return (await self.choice(body))["message"]["content"] or ""

    async def choice(self, body: dict) -> dict:
        r = await self._client.post("/chat/completions", json=body)
        if r.status_code >= 400:
            error = RequestRefused if refused(r.status_code) else RuntimeError
            raise error(f"HTTP {r.status_code}: {r.text[:300]}")
        return r.json()["choices"][0]


def make_client(target: ChatTarget) -> ChatClient:
    if target.app_name:
        from evalsvc.engines.serve_llm import AppDeployment, ServeHandleChat

        return ServeHandleChat(AppDeployment(target.app_name, target.model_id), target.gate)
    api_key = os.environ.get(target.api_key_env) if target.api_key_env else None
    return HttpChat(target.url or "", api_key)


async def ready(clients) -> None:
    """Wait until every client's server is up (a Serve app still starting has `ready()`; others need no wait).

    Stages call this before their first call, outside the per-record error handling: a judge or guard that never
    came up fails the run, it is not recorded as one error per row."""
    for client in clients:
        wait = getattr(client, "ready", None)
        if wait is not None:
            await wait()


async def chat_with_retries(client: ChatClient, body: dict, attempts: int = 4, base_delay: float = 1.0) -> str:
    """Retry transient failures with jittered exponential backoff; the last error (or a refusal) propagates."""
    return await with_retries(lambda: client.chat(body), attempts, base_delay)


async def with_retries(call: Callable[[], Awaitable[T]], attempts: int = 4, base_delay: float = 1.0) -> T:
    """`call()` until it succeeds, backing off (jittered, exponential) between tries; the last error propagates, and
    a `RequestRefused` at once."""
    for attempt in range(attempts):
        try:
            return await call()
        except RequestRefused:
            raise
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(base_delay * (2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


async def through_outages(call: Callable[[], Awaitable[T]], lost: tuple[type[BaseException], ...], wait_s: float,
                          poll_s: float = 2.0, on_wait: Callable[[], None] = lambda: None) -> T:  # fmt: skip
    """`call()`, sent again while it fails with one of `lost` (its server is being replaced) for up to `wait_s`;
    any other error, and the last one after the wait, propagate. `on_wait` is told of every failed try."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await call()
        except lost:
            on_wait()
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(poll_s)
