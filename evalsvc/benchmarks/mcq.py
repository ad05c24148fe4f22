"""Multiple-choice items: the MedGuard format (5 principles × 2 aspects, safety or accuracy questions) and capability sets.

Options come as a {letter: text} mapping, a list, a JSON string of either, or one column per letter; see FORMATS.md.
"""

from __future__ import annotations

import json
import string
from typing import Any

from evalsvc.benchmarks.item import Item
from evalsvc.benchmarks.rows import RowRef, categories, get, one_of, optional_text, text
from evalsvc.errors import UserError
from evalsvc.manifest.schema import ColumnMap

# MedGuard's five principles and the two aspects evalsvc names for each (the paper's data is not public).
ASPECTS = {
    "Truthfulness": ("factuality", "uncertainty"),
    "Resilience": ("jailbreak", "sycophancy"),
    "Fairness": ("demographic_bias", "stereotyping"),
    "Robustness": ("perturbation", "distraction"),
    "Privacy": ("phi_disclosure", "consent"),
}
PRINCIPLES = tuple(ASPECTS)
QUESTION_TYPES = ("safety", "accuracy")
MEDGUARD_LETTERS = "ABCDE"

# The documented MedGuard JSONL schema, used when a custom mcq file gives no `columns`.
MEDGUARD_COLUMNS = ColumnMap(
    item_id="id",
    text="question",
    options="options",
    answer="answer",
    categories={"principle": "principle", "aspect": "aspect", "question_type": "question_type"},
)


def check_columns(bench: str, cm: ColumnMap) -> None:
    if cm.options is None and not cm.option_columns:
        raise UserError(
            f"benchmarks.{bench}.columns: an mcq file needs `options` (one column) or `option_columns` (letter → column)"
        )
    if cm.options is not None and cm.option_columns:
        raise UserError(f"benchmarks.{bench}.columns: set `options` or `option_columns`, not both")
    if cm.answer is None:
        raise UserError(f"benchmarks.{bench}.columns.answer: an mcq file needs the column with the correct letter")
    for letter in cm.option_columns or {}:
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise UserError(
                f"benchmarks.{bench}.columns.option_columns.{letter}: option keys are single letters A, B, C, …"
            )


def mcq_item(rec: dict, cm: ColumnMap, ref: RowRef, item_id: str, split: str, medguard: bool) -> Item:
    """One MCQ item; `medguard` enforces the MedGuard vocabulary (principle, aspect, question_type, letters A–E)."""
    question = text(rec, cm.text, ref)
    options = _options(rec, cm, ref)
    answer = _answer(get(rec, cm.answer, ref), options, cm.answer, ref)
    cats = categories(rec, cm.categories, ref, missing_ok=False)
    if medguard:
        _check_medguard(cats, options, cm, ref)
    else:
        one_of(cats, "question_type", QUESTION_TYPES, ref, cm.categories.get("question_type", ""), required=False)
    reference = optional_text(rec, cm.reference, ref, missing_ok=False)
    return Item(
        item_id, "mcq", question, split=split, options=options, answer=answer, reference=reference, categories=cats
    )


def _options(rec: dict, cm: ColumnMap, ref: RowRef) -> dict[str, str]:
    if cm.option_columns:
        raw: Any = {letter: get(rec, col, ref) for letter, col in sorted(cm.option_columns.items())}
        column = ", ".join(cm.option_columns.values())
    else:
        column = cm.options
        raw = get(rec, column, ref)
    if isinstance(raw, str) and raw.strip()[:1] in ("{", "["):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ref.error(
                column, f"options are not valid JSON ({e.msg}); write a {{letter: text}} mapping or a list"
            ) from None
    if isinstance(raw, list) and raw and all(isinstance(x, (list, tuple)) and len(x) == 2 for x in raw):
        raw = dict(raw)  # a Parquet map column reads back as (key, value) pairs
    if isinstance(raw, list):
        if len(raw) > len(string.ascii_uppercase):
            raise ref.error(column, f"{len(raw)} options: at most 26 (A–Z)")
        raw = dict(zip(string.ascii_uppercase, raw, strict=False))
    if isinstance(raw, dict):
        # a Parquet struct column has every letter any row uses: null means this question has no such option
        raw = {k: v for k, v in raw.items() if v is not None}
    else:
        raise ref.error(column, f"options must be a {{letter: text}} mapping or a list, got {type(raw).__name__}")
    return _check_options(raw, column, ref)


def _check_options(raw: dict, column: str, ref: RowRef) -> dict[str, str]:
    letters = sorted(str(k).strip().upper() for k in raw)
    if len(letters) < 2:
        raise ref.error(column, f"{len(letters)} option(s): a multiple-choice question needs at least 2")
    if letters != list(string.ascii_uppercase[: len(letters)]):
        raise ref.error(column, f"option letters {''.join(letters)} must run A, B, C, … without gaps")
    options = {}
    for key, value in raw.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise ref.error(column, f"option {key} is empty or not text")
        options[str(key).strip().upper()] = value
    return dict(sorted(options.items()))


def _answer(value: Any, options: dict[str, str], column: str, ref: RowRef) -> str:
    letters = "".join(options)
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(letters):  # MMLU-style 0-based index
            return letters[value]
        raise ref.error(column, f"answer index {value} is outside the {len(letters)} options (0-based)")
    if not isinstance(value, str) or not value.strip():
        raise ref.error(column, f"answer must be one of the letters {letters}, got {value!r}")
    key = value.strip().upper().rstrip(".)")
    if key in options:
        return key
    by_text = [k for k, v in options.items() if v.strip() == value.strip()]
    if len(by_text) == 1:  # MedQA-style answer given as the option's text
        return by_text[0]
    raise ref.error(
        column, f"answer {value!r} is not one of the option letters {letters}; fix the answer or the options"
    )


def _check_medguard(cats: dict[str, str], options: dict[str, str], cm: ColumnMap, ref: RowRef) -> None:
    col = cm.categories
    one_of(cats, "principle", PRINCIPLES, ref, col["principle"], required=True)
    one_of(cats, "aspect", ASPECTS[cats["principle"]], ref, col["aspect"], required=True)
    one_of(cats, "question_type", QUESTION_TYPES, ref, col["question_type"], required=True)
    if not set(options) <= set(MEDGUARD_LETTERS):
        raise ref.error(cm.options, f"MedGuard questions have options A–E, got {''.join(options)}")
