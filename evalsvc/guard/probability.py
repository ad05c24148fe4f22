"""P(Yes) of a Yes/No guard (ShieldGemma, Granite Guardian) from the token log-probabilities of an OpenAI-format
chat-completions choice: the probabilities of the first answer token's Yes and No, renormalised over the pair.

Tokens count by their text with whitespace and case ignored (`Yes`, ` yes`); the chosen token counts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOP_LOGPROBS = 20  # alternatives asked for at the first position: enough for both answer words to appear
NO_LOGPROBS = ("the guard returned no log-probabilities: serve it where the server returns `logprobs`, or remove "
               "`threshold` so the Yes/No text decides")  # fmt: skip


def logprob_fields() -> dict:
    """The request fields that make an OpenAI-compatible server return the first tokens' log-probabilities."""
    return {"logprobs": True, "top_logprobs": TOP_LOGPROBS}


@dataclass(frozen=True)
class YesProbability:
    value: float | None
    bounded: bool = False  # one word was not among the alternatives: its share was bounded by the least listed one
    error: str | None = None


def yes_probability(choice: dict) -> YesProbability:
    """P(Yes) at the first answer token, or an error saying why the choice carries none."""
    content = ((choice or {}).get("logprobs") or {}).get("content") or []
    if not content:
        return YesProbability(None, error=NO_LOGPROBS)
    first = content[0]
    candidates = {alt.get("token"): alt.get("logprob") for alt in first.get("top_logprobs") or []}
    candidates.setdefault(first.get("token"), first.get("logprob"))
    probs = {t: math.exp(lp) for t, lp in candidates.items() if isinstance(t, str) and isinstance(lp, (int, float))}
    mass = {"yes": 0.0, "no": 0.0}
    for token, p in probs.items():
        word = token.strip().lower()
        if word in mass:
            mass[word] += p
    if not mass["yes"] and not mass["no"]:
        shown = ", ".join(repr(t) for t in list(probs)[:5])
        return YesProbability(None, error=f"neither Yes nor No among the first answer token's alternatives ({shown})")
    bounded = not (mass["yes"] and mass["no"])
    if bounded:  # the missing word is less likely than every listed alternative
        floor = min(probs.values())
        mass = {w: m or floor for w, m in mass.items()}
    return YesProbability(mass["yes"] / (mass["yes"] + mass["no"]), bounded)
