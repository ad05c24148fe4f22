"""OpenAI-compatible endpoints as candidates: ray.data.llm's HTTP processor sends one chat completion per row.

Rows become `/chat/completions` payloads; answers (or errors, after retries) become the candidate half of a record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evalsvc.engines.http_session import EndpointSessions, SecretValue, SessionPolicy, outcome_body
from evalsvc.engines.vllm import IMPORT_LOCK, LIGHT_STAGE_CPUS
from evalsvc.envref import resolve_env
from evalsvc.errors import MissingExtra
from evalsvc.manifest.models import Endpoint
from evalsvc.store.row import PLAN_COLUMNS


@dataclass(frozen=True)
class Prices:
    usd_per_1m_prompt: float | None = None
    usd_per_1m_completion: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for one generation; None when the manifest gives no prices (a missing one of the two counts 0)."""
        if self.usd_per_1m_prompt is None and self.usd_per_1m_completion is None:
            return None
        return (prompt_tokens * (self.usd_per_1m_prompt or 0.0)
                + completion_tokens * (self.usd_per_1m_completion or 0.0)) / 1e6  # fmt: skip


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint candidate, resolved for a run (the key is inside `sessions`, redacted in every repr)."""

    url: str  # full chat-completions URL
    model_name: str
    sessions: EndpointSessions
    prices: Prices
    batch_size: int = 16


def endpoint_spec(ep: Endpoint, field: str, batch_size: int, retry_base_s: float = 1.0) -> EndpointSpec:
    """Resolve the endpoint at the point of use: the ${VAR} key from this process's env (UserError when unset).
    The resolved key rides to the stage actor inside the session factory, like S3 credentials ride with the
    filesystem: the actors' own env may not have it (a cluster joined with --address)."""
    key = resolve_env(ep.api_key, f"{field}.api_key")
    policy = SessionPolicy(ep.qps, ep.concurrency, ep.max_retries, ep.timeout_s, retry_base_s)
    return EndpointSpec(
        url=ep.url.rstrip("/") + "/chat/completions",
        model_name=ep.model_name,
        sessions=EndpointSessions(policy, SecretValue(key)),
        prices=Prices(ep.usd_per_1m_prompt_tokens, ep.usd_per_1m_completion_tokens),
        # A batch is answered only when all its requests are: about two rounds of the in-flight bound keeps
        # records streaming without starving the endpoint.
        batch_size=min(batch_size, max(1, 2 * ep.concurrency)),
    )


def build_endpoint_processor(spec: EndpointSpec) -> Any:
    """A ray.data.llm Processor: dataset of pipeline rows → rows with the endpoint's answers or errors."""
    with IMPORT_LOCK:  # a judge's apps may be importing vLLM's stack on the start-up thread meanwhile
        from ray.data.llm import build_processor

    return build_processor(
        processor_config(spec),
        preprocess=ToPayload(spec.model_name),
        postprocess=FromResponse(spec.prices),
        preprocess_map_kwargs={"num_cpus": LIGHT_STAGE_CPUS},
        postprocess_map_kwargs={"num_cpus": LIGHT_STAGE_CPUS},
    )


def processor_config(spec: EndpointSpec) -> Any:
    try:
        from ray.data.llm import HttpRequestProcessorConfig
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MissingExtra("ray.data.llm (ray[data])", "cpu") from e

    return HttpRequestProcessorConfig(
        url=spec.url,
        headers=None,  # the key goes in the session's headers inside the actor, never into the config
        qps=None,  # the stage's own pacing restarts every batch; the session factory limits qps instead
        max_retries=0,  # the session retries (the stage would fail the whole batch after its last retry)
        session_factory=spec.sessions,
        batch_size=spec.batch_size,
        # One async actor holds all in-flight requests, so the qps limit and concurrency bound are global.
        concurrency=1,
        http_request_stage={"num_cpus": LIGHT_STAGE_CPUS},
    )


class ToPayload:
    """Pipeline row → the stage's `payload`: an OpenAI chat-completions body (no credentials in rows)."""

    def __init__(self, model_name: str):
        self.model_name = model_name

    def __call__(self, row: dict) -> dict:
        params = json.loads(row["sampling"])
        payload = {"model": self.model_name, "messages": json.loads(row["messages_json"])}
        for k in ("temperature", "top_p", "max_tokens", "seed"):
            if params.get(k) is not None:
                payload[k] = params[k]
        return {"payload": payload}


class FromResponse:
    """The stage's outcome → the candidate half of a record (same columns as the vLLM path, plus cost_usd)."""

    def __init__(self, prices: Prices):
        self.prices = prices

    def __call__(self, row: dict) -> dict:
        out = {k: row.get(k) for k in PLAN_COLUMNS}
        outcome = row.get("http_response") or {}
        body = outcome_body(outcome)
        err = outcome.get("error") or _body_problem(body)
        latency = outcome.get("latency_s")
        out["latency_s"] = float(latency) if latency is not None else None
        usage = (body.get("usage") if isinstance(body, dict) else None) or {}
        out["prompt_tokens"] = int(usage.get("prompt_tokens") or 0)
        out["completion_tokens"] = int(usage.get("completion_tokens") or 0)
        if err:
            tries = outcome.get("attempts") or 1
            out["error"] = f"generation: {err}" + (f" (after {tries} attempts)" if tries > 1 else "")
            out["response"], out["finish_reason"] = None, "error"
        else:
            choice = body["choices"][0]
            out["error"] = None
            out["response"] = (choice.get("message") or {}).get("content") or ""
            out["finish_reason"] = choice.get("finish_reason") or "stop"
        out["cost_usd"] = self.prices.cost(out["prompt_tokens"], out["completion_tokens"])
        return out


def _body_problem(body: Any) -> str | None:
    """Why a 2xx body is not a chat completion (None when it is one)."""
    if not isinstance(body, dict):
        return "the endpoint answered without a JSON object"
    if body.get("error"):
        return f"the endpoint answered with an error: {json.dumps(body['error'])[:300]}"
    choices = body.get("choices")
    if not choices or not isinstance(choices[0], dict):
        return "the endpoint answered without choices"
    return None


def check_endpoint_keys(manifest) -> None:
    """Every endpoint's ${VAR} key is set in this process's env (UserError naming the field otherwise)."""
    for i, m in enumerate(manifest.models):
        if m.endpoint is not None:
            resolve_env(m.endpoint.api_key, f"models.{i}.endpoint.api_key")
