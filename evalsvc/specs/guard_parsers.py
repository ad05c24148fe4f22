"""Strict parsers that turn a guard model's raw answer into a `Verdict` (pass or block, and the categories named).

A parser never guesses: an answer it cannot read unambiguously is parse_ok=False with the reason in `error`.
Each format's corpus of realistic and malformed answers is in tests/specs/corpus/guard/.

Rules shared by llama-guard and guard-classifier:
- Accepted: any letter case, whitespace around lines and around `:` / `,`, blank lines (Llama Guard opens with
  two newlines), markdown emphasis and code ticks (`**unsafe**`), a trailing period, and `unsafe` without a
  category (the decision is clear; the record then names no category).
- Rejected: empty text, prose around the decision ("The request is safe"), a category after `safe`, a category
  the format does not list, an empty category between commas, and any further line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from evalsvc.registry import Registry
from evalsvc.specs.guard_labels import read_qwen3guard, read_wildguard


@dataclass(frozen=True)
class Verdict:
    decision: str | None  # pass | block; None when the answer did not parse
    categories: tuple[str, ...] = ()
    parse_ok: bool = True
    error: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # further readings for the record (refusal, severity, ...)

    @classmethod
    def failed(cls, error: str) -> Verdict:
        return cls(decision=None, categories=(), parse_ok=False, error=error)


@dataclass(frozen=True)
class Reading:
    """What a parser knows besides the raw answer: the format's categories, the check asked, the guardrail's options."""

    categories: dict[str, str]  # code or name -> description
    check: str = "input"  # input (the request) | output (the answer)
    controversial: str = "unsafe"  # Qwen3Guard: how a Controversial verdict counts
    subject: str | None = None  # the policy or risk this one call asked about (ShieldGemma, Granite Guardian)


Parser = Callable[[str, Reading], Verdict]
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
def parse_llama_guard(raw: str, reading: Reading) -> Verdict:
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
    codes, error = _codes(lines[1], reading.categories, lambda s: s.strip().upper())
    return Verdict.failed(error) if error else Verdict("block", tuple(codes))


_CLASSIFIER_RE = re.compile(r"(?P<word>[a-z]+)\s*(?::\s*(?P<category>.*))?", re.IGNORECASE | re.DOTALL)


@register("guard-classifier")
def parse_guard_classifier(raw: str, reading: Reading) -> Verdict:
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
    codes, error = _codes(category, reading.categories, lambda s: re.sub(r"[\s-]+", "_", s.strip().lower()))
    if error:
        return Verdict.failed(error)
    if len(codes) > 1:
        return Verdict.failed("name one category after 'UNSAFE:'")
    return Verdict("block", tuple(codes))


_YES_NO_RE = re.compile(r"(?P<word>yes|no)(?:$|[.,:;!]|\s+[-\u2013\u2014]\s)", re.IGNORECASE)


@register("yes-no")
def parse_yes_no(raw: str, reading: Reading) -> Verdict:
    """`Yes` (the text breaks the policy or shows the risk: block) or `No` (pass), as ShieldGemma and Granite Guardian
    answer. An explanation may follow after punctuation or a line break ("No. The request asks ..."); the first word
    decides. Rejected: other first words, "Yes/No", "Yes and no", "Yes it does" (no break after the answer)."""
    lines = _lines(raw)
    if not lines:
        return Verdict.failed("empty answer")
    m = _YES_NO_RE.match(lines[0])
    if m is None:
        return Verdict.failed(f"the answer must start with Yes or No (then a break), got {lines[0][:80]!r}")
    if m.group("word").lower() == "no":
        return Verdict("pass")
    return Verdict("block", (reading.subject,) if reading.subject else ())


@register("qwen3guard")
def parse_qwen3guard(raw: str, reading: Reading) -> Verdict:
    """`Safety: Safe|Unsafe|Controversial`, `Categories: None|<names>`, and after a response check `Refusal: Yes|No`.

    Unsafe blocks; Controversial blocks when the guardrail counts it unsafe (the default) and passes otherwise (its
    categories then stay in the labels); a Refusal line in a request check, or none in a response check, is an error.
    """
    answer, error = read_qwen3guard(raw, reading.categories)
    if error:
        return Verdict.failed(error)
    assert answer is not None
    if reading.check == "output" and answer.refusal is None:
        return Verdict.failed("no 'Refusal:' line: a response check answers Safety, Categories and Refusal")
    if reading.check == "input" and answer.refusal is not None:
        return Verdict.failed("a 'Refusal:' line in a request check: only a response check answers Refusal")
    labels = {"safety": answer.safety}
    if answer.refusal is not None:
        labels["refusal"] = "yes" if answer.refusal else "no"
    blocked = answer.safety == "unsafe" or (answer.safety == "controversial" and reading.controversial == "unsafe")
    if blocked:
        return Verdict("block", answer.categories, labels=labels)
    if answer.categories:
        labels["categories"] = ",".join(answer.categories)
    return Verdict("pass", labels=labels)


def _yes_no_na(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "no"


@register("wildguard")
def parse_wildguard(raw: str, reading: Reading) -> Verdict:
    """`Harmful request: yes|no`, `Response refusal: yes|no|n/a`, `Harmful response: yes|no|n/a`.

    The input check decides by the request line; the output check by the response line, and there both response
    lines must be yes or no (n/a means the guard saw no response). All three are kept as labels (refusal included).
    """
    answer, error = read_wildguard(raw)
    if error:
        return Verdict.failed(error)
    assert answer is not None
    labels = {"harmful_request": _yes_no_na(answer.harmful_request), "response_refusal": _yes_no_na(answer.refusal),
              "harmful_response": _yes_no_na(answer.harmful_response)}  # fmt: skip
    if reading.check == "input":
        return Verdict("block" if answer.harmful_request else "pass", labels=labels)
    if answer.refusal is None or answer.harmful_response is None:
        return Verdict.failed("a response check needs yes or no on 'Response refusal' and 'Harmful response', got n/a")
    return Verdict("block" if answer.harmful_response else "pass", labels=labels)
