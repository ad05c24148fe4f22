"""Strict judge-answer parsers against a corpus of realistic and malformed answers (tests/specs/corpus/judge/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalsvc.errors import UserError
from evalsvc.specs.judge_parsers import (
    HIGH_RISK_LABELS,
    Judgement,
    get_parser,
    parse,
    parse_high_risk,
    parse_msb_harm,
    parse_rubric_criterion,
    parser_names,
)

CORPUS = Path(__file__).parent / "corpus" / "judge"


def corpus(name: str) -> list[dict]:
    return yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))


def cases(name: str):
    return [pytest.param(c, id=c["name"]) for c in corpus(name)]


def check(j: Judgement, case: dict) -> None:
    assert j.parse_ok is case["parse_ok"], j.error
    if case["parse_ok"]:
        assert j.score == case["score"] and isinstance(j.score, float)
        assert j.error is None
    else:
        # Never a default: a failed parse carries no score or label, only the reason why.
        assert j.score is None and j.label is None
        assert j.error and case["error"] in j.error, j.error


@pytest.mark.parametrize("case", cases("msb_harm.yaml"))
def test_msb_harm_corpus(case):
    j = parse_msb_harm(case["raw"])
    check(j, case)
    assert j.label is None


@pytest.mark.parametrize("case", cases("high_risk.yaml"))
def test_high_risk_corpus(case):
    j = parse_high_risk(case["raw"])
    check(j, case)
    if case["parse_ok"]:
        assert j.label == case["label"] and j.label in HIGH_RISK_LABELS


@pytest.mark.parametrize("case", cases("rubric_grader.yaml"))
def test_rubric_grader_corpus(case):
    j = parse_rubric_criterion(case["raw"])
    assert j.parse_ok is case["parse_ok"], j.error
    if case["parse_ok"]:
        assert (j.score, j.label) == ((1.0, "met") if case["met"] else (0.0, "not_met")) and j.error is None
        if "explanation" in case:
            assert j.reason == case["explanation"]
    else:
        assert j.score is None and j.label is None  # a criterion that did not parse is never met or unmet
        assert j.error and case["error"] in j.error, j.error


@pytest.mark.parametrize("name", ["msb_harm.yaml", "high_risk.yaml", "rubric_grader.yaml"])
def test_corpus_is_large_and_balanced(name):
    entries = corpus(name)
    assert len(entries) >= 40
    assert len({e["name"] for e in entries}) == len(entries), "case names must be unique"
    ok = sum(e["parse_ok"] for e in entries)
    assert ok >= 15 and len(entries) - ok >= 15


def test_reason_is_kept_without_markup():
    j = parse_msb_harm("**#reason:** The model refuses and cites the law.\n**#score:** 1")
    assert j.reason == "The model refuses and cites the law."
    multi = parse_msb_harm("#reason: (a) intent.\n(b) response.\n#score: 2")
    assert multi.reason == "(a) intent.\n(b) response."
    assert parse_msb_harm("#score: 3").reason is None


def test_reason_survives_a_failed_score():
    j = parse_msb_harm("#reason: The model lists the steps.\n#score: five")
    assert not j.parse_ok and j.reason == "The model lists the steps."


def test_registry_dispatches_by_name():
    assert {"msb-harm", "high-risk-behaviour", "rubric-grader"} <= set(parser_names())
    assert parse("msb-harm", "#score: 4").score == 4.0
    j = parse("high-risk-behaviour", "#label: refuse\n#helpfulness: 2")
    assert (j.label, j.score) == ("refuse", 2.0)
    assert get_parser("msb-harm") is parse_msb_harm


def test_unknown_parser_suggests_a_name():
    with pytest.raises(UserError) as e:
        get_parser("msb-harms")
    assert "did you mean 'msb-harm'?" in e.value.message
    assert "available: high-risk-behaviour, msb-harm" in e.value.message


def test_none_is_handled_like_empty():
    assert parse_msb_harm(None).error == "empty judge answer"  # type: ignore[arg-type]


# --- guard models as judges of the high-risk benchmark -------------------------------------------------------


@pytest.mark.parametrize("case", cases("wildguard_behaviour.yaml"))
def test_wildguard_behaviour_corpus(case):
    j = parse("wildguard-behaviour", case["raw"])
    check_label(j, case, "label")


@pytest.mark.parametrize("case", cases("qwen3guard_behaviour.yaml"))
@pytest.mark.parametrize(
    ("parser", "key"), [("qwen3guard-behaviour", "label"), ("qwen3guard-behaviour-loose", "label_loose")]
)
def test_qwen3guard_behaviour_corpus(case, parser, key):
    check_label(parse(parser, case["raw"]), case, key)


def check_label(j: Judgement, case: dict, key: str) -> None:
    """A guard's judgement: a behaviour label and never a helpfulness score (the guards rate none)."""
    assert j.parse_ok is case["parse_ok"], j.error
    assert j.score is None
    if case["parse_ok"]:
        assert j.label == case[key] and j.label in HIGH_RISK_LABELS and j.error is None
    else:
        assert j.label is None and j.error and case["error"] in j.error, j.error


@pytest.mark.parametrize("name", ["wildguard_behaviour.yaml", "qwen3guard_behaviour.yaml"])
def test_guard_judge_corpus_covers_the_labels_and_failures(name):
    entries = corpus(name)
    labels = {e.get(key) for e in entries if e["parse_ok"] for key in ("label", "label_loose")}
    assert labels - {None} == {"refuse", "cautious_answer", "unsafe_actionable"}  # never safe_redirect: see the doc
    assert sum(not e["parse_ok"] for e in entries) >= 4
