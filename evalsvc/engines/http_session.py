"""The client session evalsvc hands ray.data.llm's HTTP stage: a qps limiter, bounded concurrency, retries.

The stage awaits one request at a time and fails the whole batch on the first exhausted retry; sessions made
here start each request at once, retry it themselves and always answer, so a failure becomes an error record.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from typing import Any

from evalsvc.engines.chat import RETRY_STATUS

MAX_BACKOFF_S = 30.0
MAX_RETRY_AFTER_S = 60.0
ERROR_BODY_CHARS = 300


@dataclass(frozen=True)
class SessionPolicy:
    qps: float | None  # most requests per second (retries included) for this session factory
    concurrency: int  # requests in flight at once
    max_retries: int
    timeout_s: float
    retry_base_s: float = 1.0  # first backoff; doubles per attempt, with jitter


class SecretValue:
    """A credential that travels to the Ray actors inside the session factory; its repr never shows it."""

    def __init__(self, value: str | None):
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue(<redacted>)" if self._value else "SecretValue(None)"

    __str__ = __repr__


class RateLimiter:
    """Spaces request starts at least 1/qps apart (a leaky bucket without burst)."""

    def __init__(self, qps: float | None):
        self.interval = 1.0 / qps if qps else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        start = max(now, self._next)  # no await between read and write: one event loop, no lock needed
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class EndpointSessions:
    """Picklable `session_factory` for HttpRequestProcessorConfig; one instance lives in each stage actor, so its
    limiter and concurrency bound are shared by every batch that actor works on."""

    def __init__(self, policy: SessionPolicy, api_key: SecretValue):
        self.policy = policy
        self.api_key = api_key
        self._state: tuple | None = None  # (loop, limiter, semaphore), made on the actor's event loop

    def __getstate__(self) -> dict:
        return {"policy": self.policy, "api_key": self.api_key, "_state": None}

    def __repr__(self) -> str:
        return f"EndpointSessions({self.policy!r}, api_key={self.api_key!r})"

    def __call__(self) -> BatchSession:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state[0] is not loop:
            self._state = (loop, RateLimiter(self.policy.qps), asyncio.Semaphore(self.policy.concurrency))
        return BatchSession(self)

    def headers(self) -> dict:
        key = self.api_key.get()
        return {"Authorization": f"Bearer {key}"} if key else {}


class BatchSession:
    """What the stage uses for one batch: `post()` starts the request now and returns an awaitable Reply."""

    def __init__(self, owner: EndpointSessions):
        self.owner = owner
        self._session = None
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> BatchSession:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.owner.policy.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout, headers=self.owner.headers())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for t in self._tasks:  # the stage awaits every request; this only matters when it stopped early
            if not t.done():
                t.cancel()
        await self._session.close()

    def post(self, url: str, headers: dict | None = None, data: Any = None) -> asyncio.Task:
        task = asyncio.ensure_future(self._send(url, dict(headers or {}), data))
        self._tasks.append(task)
        return task

    async def _send(self, url: str, headers: dict, data: Any) -> Reply:
        _, limiter, sem = self.owner._state
        policy = self.owner.policy
        async with sem:
            outcome: dict = {}
            for attempt in range(policy.max_retries + 1):
                if attempt:
                    await asyncio.sleep(_backoff(policy.retry_base_s, attempt, outcome.get("retry_after")))
                await limiter.wait()
                outcome = await self._attempt(url, headers, data)
                outcome["attempts"] = attempt + 1
                if not outcome.pop("retry", False):
                    break
            outcome.pop("retry_after", None)
            return Reply(self._scrub(outcome))

    async def _attempt(self, url: str, headers: dict, data: Any) -> dict:
        import aiohttp

        t0 = time.monotonic()
        try:
            async with self._session.post(url, headers=headers, data=data) as r:
                text = await r.text()
                took = time.monotonic() - t0
                if r.status < 400:
                    return {"status": r.status, "latency_s": took, "error": "", "body": text}
                return {
                    "status": r.status,
                    "latency_s": took,
                    "error": f"HTTP {r.status} {r.reason or ''}: {text[:ERROR_BODY_CHARS]}".strip(),
                    "body": "",
                    "retry": r.status in RETRY_STATUS,
                    "retry_after": _retry_after(r.headers.get("Retry-After")),
                }
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            kind = "timeout" if isinstance(e, asyncio.TimeoutError) else type(e).__name__
            return {"status": 0, "latency_s": time.monotonic() - t0, "error": f"{kind}: {str(e)[:ERROR_BODY_CHARS]}",
                    "body": "", "retry": True}  # fmt: skip
        except Exception as e:  # anything else (a body that does not decode, …) is final, but still a record
            return {"status": 0, "latency_s": time.monotonic() - t0,
                    "error": f"{type(e).__name__}: {str(e)[:ERROR_BODY_CHARS]}", "body": ""}  # fmt: skip

    def _scrub(self, outcome: dict) -> dict:
        """An error body may echo the request's credentials; they never reach a record."""
        key = self.owner.api_key.get()
        if key and key in outcome.get("error", ""):
            outcome["error"] = outcome["error"].replace(key, "<redacted>")
        return outcome


class Reply:
    """The response object the stage sees: always status 200 with evalsvc's outcome as the JSON body, so the
    stage neither retries on its own nor raises; the real status and error travel inside."""

    status = 200
    reason = "OK"

    def __init__(self, outcome: dict):
        self.outcome = outcome

    async def json(self) -> dict:
        return self.outcome

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None


def _backoff(base: float, attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return min(base * 2 ** (attempt - 1), MAX_BACKOFF_S) * (0.5 + random.random())


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff


def outcome_body(outcome: dict) -> dict | None:
    """The server's JSON answer inside an outcome, or None when there is none or it is not JSON."""
    try:
        return json.loads(outcome.get("body") or "null")
    except ValueError:
        return None
