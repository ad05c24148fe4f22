"""Strict guard-answer parsers against a corpus of realistic and malformed answers (tests/guard/corpus/),
and the shipped formats' guided regexes against the same answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from evalsvc.errors import UserError
from evalsvc.specs.guard_formats import load_guard_format
from evalsvc.specs.guard_parsers import Verdict, get_parser, parser_names

CORPUS = Path(__file__).parent / "corpus"
FILES = {"llama_guard.yaml": "llama-guard", "guard_classifier.yaml": "guard-classifier"}


def corpus(name: str) -> list[dict]:
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


def cases():
    return [pytest.param(FILES[f], c, id=f"{FILES[f]}: {c['name']}") for f in FILES for c in corpus(f)]


def check(v: Verdict, case: dict) -> None:
    assert v.parse_ok is case["parse_ok"], v.error
    if case["parse_ok"]:
        assert v.decision == case["decision"] and v.error is None
        assert list(v.categories) == case.get("categories", [])
    else:
        # Never a default: a failed parse decides nothing, names nothing, and says why.
        assert v.decision is None and v.categories == ()
        assert v.error and case["error"] in v.error, v.error


@pytest.mark.parametrize(("fmt_id", "case"), cases())
def test_corpus(fmt_id, case):
    fmt = load_guard_format(fmt_id)
    check(fmt.parse(case["raw"]), case)


@pytest.mark.parametrize(("fmt_id", "case"), [c for c in cases() if "guided" in c.values[1]])
def test_guided_regex_accepts_exactly_the_clean_answers(fmt_id, case):
    fmt = load_guard_format(fmt_id)
    for check_name in ("input", "output"):
        matched = re.fullmatch(fmt.guided[check_name]["regex"], case["raw"]) is not None
        assert matched is case["guided"], (check_name, case["raw"])


@pytest.mark.parametrize("fmt_id", FILES.values())
def test_every_answer_the_guided_regex_allows_parses(fmt_id):
    """A tiny model under guided decoding can only write what the regex allows: each such answer must parse."""
    fmt = load_guard_format(fmt_id)
    codes = list(fmt.categories)
    if fmt_id == "llama-guard":
        answers = ["safe"] + [f"unsafe\n{c}" for c in codes] + ["unsafe\n" + ",".join(codes[:4])]
    else:
        answers = ["SAFE"] + [f"UNSAFE: {c}" for c in codes]
    regex = fmt.guided["input"]["regex"]
    for raw in answers:
        assert re.fullmatch(regex, raw), raw
        v = fmt.parse(raw)
        assert v.parse_ok and v.decision == ("pass" if raw.lower() == "safe" else "block"), (raw, v)
    assert not re.fullmatch(regex, "unsafe\n" + ",".join(codes[:5]))  # bounded: fits the format's max_tokens


@pytest.mark.parametrize("name", FILES)
def test_corpus_is_large_and_balanced(name):
    entries = corpus(name)
    assert len(entries) >= 15
    assert sum(e["parse_ok"] for e in entries) >= 6 and sum(not e["parse_ok"] for e in entries) >= 6
    assert {e.get("decision") for e in entries if e["parse_ok"]} == {"pass", "block"}
    assert len({e["name"] for e in entries}) == len(entries)


def test_parser_registry_names_and_suggestions():
    assert parser_names() == ["guard-classifier", "llama-guard"]
    with pytest.raises(UserError, match="did you mean 'llama-guard'"):
        get_parser("llama_guard")
