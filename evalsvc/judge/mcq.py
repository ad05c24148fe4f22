"""Deterministic extraction of the answer letter from a multiple-choice response; no judge model involved.

Strategies run from most to least explicit; the first that finds anything decides; "unparsed" is an explicit outcome.

Order and rules (letters outside `letters` never count):
1. answer_line   - the LAST line like `Answer: C` / `Final answer: (C) text` wins (the prompt strategies ask for
                   it; earlier ones are drafts). If it names two letters (`B or C`) or a letter not offered, unparsed.
                   With `options`, `Answer: <exact option text>` counts too.
2. final_line    - the last non-empty line is a letter alone (`C`, `(c)`, `C.`) or `C) option text` (the latter
                   only when no other line starts with a different option letter, i.e. not an echoed option list).
3. answer_phrase - `the answer is (B)`, `correct option is B`, `I choose B` anywhere.
4. bold          - `**C**`, `**C) option text**`.
5. option_prefix - a line starting `C) …`, `(C) …` or `C. …`.
6. option_text   - with `options`: the response quotes exactly one option's text (word-bounded, case-insensitive;
                   texts under 4 characters such as Yes/No are ignored).
Strategies 3-6 must agree with themselves: two different letters from the deciding strategy is unparsed (ambiguous).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple


class Extraction(NamedTuple):
    letter: str | None
    parse_ok: bool
    how: str  # the deciding strategy, or "unparsed: <why>"


def _unparsed(why: str) -> Extraction:
    return Extraction(None, False, f"unparsed: {why}")


_ANSWER_LINE = re.compile(
    r"^[\s>#\-•]*(?:the\s+)?(?:final|correct|best|my)?\s*answer\s*(?:is\s*)?[:=]\s*(?P<v>.*)$",
    re.IGNORECASE,
)
_PHRASE = re.compile(
    r"\b(?:(?:answer|option|choice)\s+(?:is|would\s+be|will\s+be)|i\s+(?:would\s+)?(?:choose|select|pick))"
    r"\s*:?\s*(?:option\s+|choice\s+)?(?P<v>[^\n]*)",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*\s*[(\[]?(?P<l>[A-Z])[)\]]?(?:[.:)]?\s*\*\*|[.:)]\s+[^*\n]+\*\*)")
_PREFIX = re.compile(r"^\s*(?:\((?P<a>[A-Z])\)|(?P<b>[A-Z])[).])\s+\S", re.MULTILINE)
_SECOND = re.compile(r"^\s*[.)\]]?\s*(?:,|/|&|\bor\b|\band\b)\s*[(\[]?(?P<l>[A-Za-z])(?![A-Za-z])", re.IGNORECASE)


def _lead_letter(value: str) -> tuple[str, str] | None:
    """The letter a value starts with, and the rest; a lowercase letter counts only when it stands alone."""
    v = re.sub(r"^(?:option|choice|letter)\s+", "", value.strip(), flags=re.IGNORECASE)
    if m := re.match(r"[(\[]([A-Za-z])[)\]]", v):
        return m.group(1).upper(), v[m.end() :]
    if m := re.match(r"([A-Z])(?![A-Za-z0-9'’-])", v):
        return m.group(1), v[m.end() :]
    if m := re.fullmatch(r"([a-z])\s*[.)]?", v):
        return m.group(1).upper(), ""
    return None


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".").strip().lower()


def _option_named(value: str, options: Mapping[str, str] | None, letters: str) -> str | None:
    if not options:
        return None
    wanted = _norm(value)
    hits = [k.upper() for k, v in options.items() if k.upper() in letters and _norm(v) == wanted]
    return hits[0] if len(hits) == 1 else None


def _answer_line(text: str, letters: str, options: Mapping[str, str] | None) -> Extraction | None:
    values = [m.group("v") for line in text.splitlines() if (m := _ANSWER_LINE.match(line))]
    if not values:
        return None
    value = values[-1]
    if named := _option_named(value, options, letters):
        return Extraction(named, True, "answer_line")
    lead = _lead_letter(value)
    if lead is None:
        return None  # "Answer: see above": let the weaker strategies read the rest
    letter, rest = lead
    if letter not in letters:
        return _unparsed(f"answer line names '{letter}', not one of {letters}")
    if (second := _SECOND.match(rest)) and second.group("l").upper() != letter:
        return _unparsed(f"answer line names {letter} and {second.group('l').upper()}")
    return Extraction(letter, True, "answer_line")


def _final_line(text: str, letters: str) -> Extraction | None:
    lines = [line.strip().strip("\"'") for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    if (m := re.fullmatch(r"[(\[]?([A-Za-z])[)\]]?\.?", last)) and m.group(1).upper() in letters:
        return Extraction(m.group(1).upper(), True, "final_line")
    # "C) text" as the last line is an answer only if no other line lists a different option (an echoed list).
    if (m := re.match(r"[(\[]?([A-Z])[)\].:]\s+\S", last)) and m.group(1) in letters:
        listed = {p.group("a") or p.group("b") for p in _PREFIX.finditer(text)} & set(letters)
        if listed <= {m.group(1)}:
            return Extraction(m.group(1), True, "final_line")
    return None


def _agreeing(name: str, found: list[str], letters: str) -> Extraction | None:
    distinct = sorted({x for x in found if x in letters})
    if not distinct:
        return None
    if len(distinct) > 1:
        return _unparsed(f"{name} names {', '.join(distinct)}")
    return Extraction(distinct[0], True, name)


def _phrase_letters(text: str) -> list[str]:
    return [lead[0] for m in _PHRASE.finditer(text) if (lead := _lead_letter(m.group("v")))]


def _option_text_letters(text: str, options: Mapping[str, str] | None) -> list[str]:
    if not options:
        return []
    work = re.sub(r"\s+", " ", text).lower()
    found = []
    # Longest first, and blank each hit, so "aspirin" is not also found inside "aspirin and heparin".
    for key, option in sorted(options.items(), key=lambda kv: -len(kv[1])):
        needle = re.sub(r"\s+", " ", option).strip().strip(".").lower()
        if len(needle) < 4:
            continue  # "No", "Yes" and the like occur in prose by chance
        pattern = re.compile(r"(?<!\w)" + re.escape(needle) + r"(?!\w)")
        if pattern.search(work):
            found.append(key.upper())
            work = pattern.sub("\0", work)
    return found


def _options_map(options: Mapping[str, str] | str | None) -> Mapping[str, str] | None:
    """Options as a mapping; a string is the record/row form "A. text" one per line (a record column)."""
    if not isinstance(options, str):
        return options
    pairs = (re.match(r"\s*([A-Za-z])\.\s+(.*\S)", line) for line in options.splitlines())
    return {m.group(1).upper(): m.group(2) for m in pairs if m} or None


def extract_answer(
    text: str | None, letters: str = "ABCDE", options: Mapping[str, str] | str | None = None
) -> Extraction:
    """The answer letter in `text`, among `letters`; `options` (letter -> text) enables matching quoted option text."""
    letters = (letters or "").upper()
    if not letters:
        return _unparsed("the item offers no option letters")
    if not letters.isalpha():
        raise ValueError(f"letters must be a string of option letters like 'ABCD', got {letters!r}")
    if not text or not text.strip():
        return _unparsed("empty response")
    options = _options_map(options)
    plain = text.replace("*", "").replace("`", "")
    if found := _answer_line(plain, letters, options) or _final_line(plain, letters):
        return found
    for name, candidates in (
        ("answer_phrase", _phrase_letters(plain)),
        ("bold", [m.group("l") for m in _BOLD.finditer(text.replace("`", ""))]),
        ("option_prefix", [m.group("a") or m.group("b") for m in _PREFIX.finditer(plain)]),
        ("option_text", _option_text_letters(plain, options)),
    ):
        if found := _agreeing(name, candidates, letters):
            return found
    return _unparsed("no answer letter found")
