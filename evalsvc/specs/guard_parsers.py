"""Strict parsers that turn a guard model's raw answer into a `Verdict` (pass or block, and the categories named).

A parser never guesses: an answer it cannot read unambiguously is parse_ok=False with the reason in `error`.

Rules shared by both formats:
- Accepted: any letter case, whitespace around lines and around `:` / `,`, blank lines (Llama Guard opens with
  two newlines), markdown emphasis and code ticks (`**unsafe**`), a trailing period, and `unsafe` without a
  category (the decision is clear; the record then names no category).
- Rejected: empty text, prose around the decision ("The request is safe"), a category after `safe`, a category
  the format does not list, an empty category between commas, and any further line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from evalsvc.registry import Registry


@dataclass(frozen=True)
class Verdict:
    decision: str | None  # pass | block; None when the answer did not parse
    categories: tuple[str, ...] = ()
    parse_ok: bool = True
    error: str | None = None

    @classmethod
    def failed(cls, error: str) -> Verdict:
        return cls(decision=None, categories=(), parse_ok=False, error=error)


Parser = Callable[[str, dict[str, str]], Verdict]  # (raw answer, the format's categories: code -> description)
_PARSERS: Registry[Parser] = Registry("guard parser")
register = _PARSERS.register
parser_names = _PARSERS.names
get_parser = _PARSERS.get


def _lines(raw: str) -> list[str]:
    text = (raw or "").replace("*", "").replace("`", "")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _word(line: str) -> str:
    return line.rstrip(".").strip().lower()


def _codes(text: str, categories: dict[str, str], normalise: Callable[[str], str]) -> tuple[list[str], str | None]:
    """Comma-separated category codes, each one the format lists; (codes, error)."""
    known = {normalise(k): k for k in categories}
    out: list[str] = []
    for part in text.rstrip(".").split(","):
        code = normalise(part)
        if not code:
            return [], f"empty category in {text!r}"
        if code not in known:
            return [], f"unknown category {part.strip()!r}: the format lists {', '.join(categories)}"
        if known[code] not in out:
            out.append(known[code])
    return out, None


@register("llama-guard")
def parse_llama_guard(raw: str, categories: dict[str, str]) -> Verdict:
    """`safe`, or `unsafe` with comma-separated category codes (S1,S4) on the next line."""
    lines = _lines(raw)
    if not lines:
        return Verdict.failed("empty answer")
    first = _word(lines[0])
    if first == "safe":
        return Verdict("pass") if len(lines) == 1 else Verdict.failed("text after 'safe'")
    if first != "unsafe":
        return Verdict.failed(f"the first line must be 'safe' or 'unsafe', got {lines[0][:80]!r}")
    if len(lines) == 1:
        return Verdict("block")
    if len(lines) > 2:
        return Verdict.failed("more than two lines: 'unsafe' then one line of category codes")
    codes, error = _codes(lines[1], categories, lambda s: s.strip().upper())
    return Verdict.failed(error) if error else Verdict("block", tuple(codes))


_CLASSIFIER_RE = re.compile(r"(?P<word>[a-z]+)\s*(?::\s*(?P<category>.*))?", re.IGNORECASE | re.DOTALL)


@register("guard-classifier")
def parse_guard_classifier(raw: str, categories: dict[str, str]) -> Verdict:
    """One line: `SAFE`, or `UNSAFE: <category>` with a category name the format lists."""
    lines = _lines(raw)
    if not lines:
        return Verdict.failed("empty answer")
    if len(lines) > 1:
        return Verdict.failed("more than one line: answer SAFE or UNSAFE: <category> on one line")
    m = _CLASSIFIER_RE.fullmatch(lines[0].rstrip("."))
    word = m.group("word").lower() if m else ""
    if word not in ("safe", "unsafe"):
        return Verdict.failed(f"the answer must start with SAFE or UNSAFE, got {lines[0][:80]!r}")
    category = (m.group("category") or "").strip()
    if word == "safe":
        return Verdict("pass") if m.group("category") is None else Verdict.failed("SAFE takes no category")
    if not category:
        return Verdict("block") if m.group("category") is None else Verdict.failed("empty category after 'UNSAFE:'")
    codes, error = _codes(category, categories, lambda s: re.sub(r"[\s-]+", "_", s.strip().lower()))
    if error:
        return Verdict.failed(error)
    if len(codes) > 1:
        return Verdict.failed("name one category after 'UNSAFE:'")
    return Verdict("block", tuple(codes))
