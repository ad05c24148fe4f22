"""One guard check as calls to the guard model: the request body, the answer read into an `Outcome`, and, for formats
that ask about one policy per call (ShieldGemma), one call per policy combined into one decision.

A call that fails, an answer that does not parse, or missing log-probabilities under a `threshold` is decision
`error` with the reason, never a guess.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from evalsvc.engines.chat import ChatClient, chat_with_retries, with_retries
from evalsvc.guard.probability import NO_LOGPROBS, logprob_fields, yes_probability

if TYPE_CHECKING:
    from evalsvc.plan.arms import Arm


@dataclass(frozen=True)
class Outcome:
    """One guard check: the decision (pass | block | error), the raw answer, the categories and why it failed."""

    decision: str
    raw: str | dict | None = None  # the answer; {policy: answer} when the check asked one policy per call
    categories: tuple[str, ...] = ()  # the categories' names (the format's `names`, else their codes)
    error: str | None = None
    parse_ok: bool = False
    latency_s: float | None = None
    labels: dict = field(default_factory=dict)  # further readings: refusal, severity, the Yes/No text under threshold
    p_yes: float | dict | None = None  # P(Yes) under a threshold; {policy: P(Yes)} per policy


def guard_body(arm: Arm, check: str, question: str, response: str | None, subject: str | None) -> dict:
    """The chat-completions request of one guard call."""
    fmt = arm.format
    assert fmt is not None
    body = {
        "model": arm.target.model_id if arm.target else arm.name,
        "messages": fmt.messages(check, question, response, subject),  # type: ignore[arg-type]
        "temperature": 0.0,
        "max_tokens": fmt.max_tokens,
        "stream": False,
        **fmt.request_fields(subject),
    }
    if arm.guided and fmt.guided.get(check):
        body["structured_outputs"] = dict(fmt.guided[check])
    if arm.options.threshold is not None:
        body.update(logprob_fields())
    return body


async def ask(arm: Arm, client: ChatClient, check: str, question: str, response: str | None,
              sem: asyncio.Semaphore, attempts: int) -> Outcome:  # fmt: skip
    """Every call of one check (one per policy, or one), combined into one outcome."""
    subjects = arm.options.subjects()
    calls = [_ask_one(arm, client, check, question, response, s, sem, attempts) for s in subjects]
    outcomes = list(await asyncio.gather(*calls))
    return outcomes[0] if len(outcomes) == 1 else combine(subjects, outcomes)  # type: ignore[arg-type]


async def _ask_one(arm: Arm, client: ChatClient, check: str, question: str, response: str | None,
                   subject: str | None, sem: asyncio.Semaphore, attempts: int) -> Outcome:  # fmt: skip
    body = guard_body(arm, check, question, response, subject)
    threshold = arm.options.threshold
    if threshold is not None and not hasattr(client, "choice"):
        return Outcome("error", error=f"guard: {NO_LOGPROBS}")
    choice: dict = {}
    async with sem:
        t0 = time.monotonic()
        try:
            if threshold is not None:
                choice = await with_retries(lambda: client.choice(body), attempts)  # type: ignore[attr-defined]
                raw = (choice.get("message") or {}).get("content") or ""
            else:
                raw = await chat_with_retries(client, body, attempts=attempts)
        except Exception as e:  # recorded, never dropped
            return Outcome("error", error=f"guard: {type(e).__name__}: {str(e)[:300]}", latency_s=time.monotonic() - t0)
        latency = time.monotonic() - t0
    fmt = arm.format
    assert fmt is not None
    v = fmt.parse(raw, check, arm.options.controversial or "unsafe", subject)  # type: ignore[arg-type]
    if threshold is None:
        names = tuple(fmt.category_name(c) for c in v.categories)
        return Outcome(v.decision or "error", raw, names, v.error, v.parse_ok, latency, v.labels)
    # Under a threshold the probability decides; the text's own reading stays in the labels.
    labels = {**v.labels, "text": v.decision or f"unparsed: {v.error}"}
    p = yes_probability(choice)
    if p.value is None:
        return Outcome("error", raw, error=f"guard: {p.error}", latency_s=latency, labels=labels)
    if p.bounded:
        labels["p_yes_bounded"] = "true"
    blocked = p.value >= threshold
    names = (fmt.category_name(subject),) if blocked and subject else ()
    return Outcome("block" if blocked else "pass", raw, names, None, True, latency, labels, round(p.value, 6))


def combine(subjects: tuple[str, ...], outcomes: list[Outcome]) -> Outcome:
    """One check's outcome from its per-policy calls: block if any policy blocks, else error if any failed."""
    blocked = [o for o in outcomes if o.decision == "block"]
    failed = any(o.decision == "error" for o in outcomes)
    decision = "block" if blocked else "error" if failed else "pass"
    errors = [f"{s}: {o.error}" for s, o in zip(subjects, outcomes) if o.error]
    labels = {f"{s}.{k}": v for s, o in zip(subjects, outcomes) for k, v in o.labels.items()}
    p_yes = {s: o.p_yes for s, o in zip(subjects, outcomes) if o.p_yes is not None}
    latencies = [o.latency_s for o in outcomes if o.latency_s is not None]
    return Outcome(
        decision,
        {s: o.raw for s, o in zip(subjects, outcomes)},  # type: ignore[misc]
        tuple(dict.fromkeys(c for o in blocked for c in o.categories)),
        "; ".join(errors) or None,
        all(o.parse_ok for o in outcomes),
        max(latencies) if latencies else None,
        labels,
        p_yes or None,
    )
