"""The MCQ answer-letter extractor against a corpus of candidate answers (tests/judge/corpus/mcq.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evalsvc.judge.mcq import Extraction, extract_answer

CASES = yaml.safe_load((Path(__file__).parent / "corpus" / "mcq.yaml").read_text(encoding="utf-8"))
STRATEGIES = {"answer_line", "final_line", "answer_phrase", "bold", "option_prefix", "option_text"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in CASES])
def test_corpus(case):
    letter, ok, how = extract_answer(case["text"], case.get("letters", "ABCDE"), case.get("options"))
    assert letter == case["letter"], how
    assert ok is (case["letter"] is not None)
    if ok:
        assert how == case["how"]
    else:
        assert how.startswith("unparsed: ") and len(how) > len("unparsed: ")


def test_corpus_covers_every_strategy_and_failure():
    assert len(CASES) >= 30
    assert {c["how"] for c in CASES} == STRATEGIES | {"unparsed"}
    assert sum(c["letter"] is None for c in CASES) >= 8


def test_result_is_a_named_triple():
    got = extract_answer("Answer: B", "ABCD")
    assert isinstance(got, Extraction) and got == ("B", True, "answer_line")
    assert got.letter == "B" and got.parse_ok and got.how == "answer_line"


def test_none_response_is_unparsed():
    assert extract_answer(None) == (None, False, "unparsed: empty response")


def test_letters_are_case_insensitive_and_validated():
    assert extract_answer("Answer: c", "abcd").letter == "C"
    assert extract_answer("Answer: C", "") == (None, False, "unparsed: the item offers no option letters")
    with pytest.raises(ValueError):
        extract_answer("Answer: C", "A,B")


def test_explicit_answer_line_beats_weaker_evidence():
    text = "The answer is A at first sight, and **B** looks good.\nAnswer: D"
    assert extract_answer(text, "ABCD") == ("D", True, "answer_line")


def test_ambiguity_reports_the_letters():
    _, ok, how = extract_answer("Answer: B or C")
    assert not ok and "B and C" in how
    _, ok, how = extract_answer("Answer: F")
    assert not ok and "'F'" in how and "ABCDE" in how


def test_short_option_texts_are_not_matched_by_chance():
    options = {"A": "Yes", "B": "No"}
    assert extract_answer("No doubt this is hard; yes, I think so.", "AB", options).letter is None



def test_options_in_the_row_string_form():
    # Item.to_row writes options as "A. text" lines; the stage can pass that string as it is.
    row_options = "A. Insulin glargine\nB. Metformin\nC. Glipizide"
    assert extract_answer("Start with metformin at a low dose.", "ABC", row_options) == ("B", True, "option_text")
    without = extract_answer("Start with metformin at a low dose.", "ABC", "")
    assert without == (None, False, "unparsed: no answer letter found")
