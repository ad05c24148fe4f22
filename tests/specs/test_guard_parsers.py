"""Strict guard-answer parsers against a corpus of realistic and malformed answers (tests/specs/corpus/guard/),
and the shipped formats' guided regexes against the same answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from evalsvc.errors import UserError
from evalsvc.specs.guard_formats import load_guard_format
from evalsvc.specs.guard_parsers import Verdict, get_parser, parser_names

CORPUS = Path(__file__).parent / "corpus" / "guard"
FILES = {
    "llama_guard.yaml": "llama-guard",
    "guard_classifier.yaml": "guard-classifier",
    "llama_guard_3.yaml": "llama-guard-3",
    "qwen3guard.yaml": "qwen3guard",
    "wildguard.yaml": "wildguard",
    "shieldgemma.yaml": "shieldgemma",
    "granite_guardian.yaml": "granite-guardian",
}


def corpus(name: str) -> list[dict]:
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


def cases():
    return [pytest.param(FILES[f], c, id=f"{FILES[f]}: {c['name']}") for f in FILES for c in corpus(f)]


def check(v: Verdict, case: dict) -> None:
    assert v.parse_ok is case["parse_ok"], v.error
    if case["parse_ok"]:
        assert v.decision == case["decision"] and v.error is None
        assert list(v.categories) == case.get("categories", [])
        assert case.get("labels", {}).items() <= v.labels.items(), v.labels
    else:
        # Never a default: a failed parse decides nothing, names nothing, and says why.
        assert v.decision is None and v.categories == ()
        assert v.error and case["error"] in v.error, v.error


def parse_case(fmt_id: str, case: dict) -> Verdict:
    fmt = load_guard_format(fmt_id)
    return fmt.parse(case["raw"], case.get("check", "input"), case.get("controversial", "unsafe"), case.get("subject"))


@pytest.mark.parametrize(("fmt_id", "case"), cases())
def test_corpus(fmt_id, case):
    check(parse_case(fmt_id, case), case)


@pytest.mark.parametrize(("fmt_id", "case"), [c for c in cases() if "guided" in c.values[1]])
def test_guided_regex_accepts_exactly_the_clean_answers(fmt_id, case):
    fmt = load_guard_format(fmt_id)
    for check_name in [case["check"]] if "check" in case else ["input", "output"]:
        if "check" not in case and fmt.guided["input"] != fmt.guided["output"]:
            check_name = "input"  # the checks' regexes differ: a case without `check` is a request check
        matched = re.fullmatch(fmt.guided[check_name]["regex"], case["raw"]) is not None
        assert matched is case["guided"], (check_name, case["raw"])


def allowed_answers(fmt_id: str, check_name: str) -> list[str]:
    """Answers a model under guided decoding can write (every branch of the format's regex at least once)."""
    fmt = load_guard_format(fmt_id)
    codes = list(fmt.categories)
    if fmt_id in ("llama-guard", "llama-guard-3"):
        return ["safe"] + [f"unsafe\n{c}" for c in codes] + ["unsafe\n" + ",".join(codes[:4])]
    if fmt_id == "guard-classifier":
        return ["SAFE"] + [f"UNSAFE: {c}" for c in codes]
    if fmt_id == "qwen3guard":
        cats = [c for c in codes if check_name == "input" or c != "Jailbreak"]
        firsts = ["Safety: Safe\nCategories: None", "Safety: Unsafe\nCategories: None"]
        firsts += [f"Safety: {s}\nCategories: {c}" for s in ("Unsafe", "Controversial") for c in cats]
        firsts.append("Safety: Unsafe\nCategories: " + ", ".join(cats[:3]))
        refusals = ["\nRefusal: Yes", "\nRefusal: No"] if check_name == "output" else [""]
        return [f + r for f in firsts for r in refusals]
    if fmt_id == "wildguard":
        rest = ["yes", "no"] + (["N/A"] if check_name == "input" else [])
        return [f"Harmful request: {a}\nResponse refusal: {b}\nHarmful response: {c}"
                for a in ("yes", "no") for b in rest for c in rest]  # fmt: skip
    return ["Yes", "No"]


@pytest.mark.parametrize("fmt_id", FILES.values())
@pytest.mark.parametrize("check_name", ["input", "output"])
def test_every_answer_the_guided_regex_allows_parses(fmt_id, check_name):
    """A tiny model under guided decoding can only write what the regex allows: each such answer must parse."""
    fmt = load_guard_format(fmt_id)
    regex = fmt.guided[check_name]["regex"]
    for raw in allowed_answers(fmt_id, check_name):
        assert re.fullmatch(regex, raw), raw
        v = fmt.parse(raw, check_name, subject=next(iter(fmt.categories), None))  # type: ignore[arg-type]
        assert v.parse_ok and v.decision in ("pass", "block"), (raw, v)
    if fmt_id in ("llama-guard", "llama-guard-3"):  # bounded: fits the format's max_tokens
        assert not re.fullmatch(regex, "unsafe\n" + ",".join(list(fmt.categories)[:5]))


@pytest.mark.parametrize("name", FILES)
def test_corpus_is_large_and_balanced(name):
    entries = corpus(name)
    assert len(entries) >= 15
    assert sum(e["parse_ok"] for e in entries) >= 6 and sum(not e["parse_ok"] for e in entries) >= 6
    assert {e.get("decision") for e in entries if e["parse_ok"]} == {"pass", "block"}
    assert len({e["name"] for e in entries}) == len(entries)


def test_parser_registry_names_and_suggestions():
    assert parser_names() == ["guard-classifier", "llama-guard", "qwen3guard", "wildguard", "yes-no"]
    with pytest.raises(UserError, match="did you mean 'llama-guard'"):
        get_parser("llama_guard")
