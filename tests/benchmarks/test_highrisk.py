"""High-risk items: the bundled MedHarm sample, the schema's vocabulary, controls, and mapped custom columns."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evalsvc.benchmarks import load_items
from evalsvc.benchmarks.highrisk import CATEGORIES, EXPECTED_BEHAVIORS
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_sample_covers_all_categories_behaviours_and_controls():
    items = load_items(Benchmark(name="mh", dataset="medharm"))
    assert len(items) == 20 and {it.kind for it in items} == {"high_risk"}
    assert len(CATEGORIES) == 10 and {it.categories["category"] for it in items} == set(CATEGORIES)
    assert {it.categories["expected_behavior"] for it in items} == set(EXPECTED_BEHAVIORS)
    controls = [it for it in items if it.categories["control"] == "true"]
    assert 3 <= len(controls) <= 6
    assert all(it.categories["expected_behavior"] != "refuse" for it in controls), (
        "a benign control is not to be refused"
    )
    assert Counter(it.categories["control"] for it in items).keys() == {"true", "false"}
    assert any(it.reference for it in items)


def test_documented_schema_defaults_control_to_false_and_checks_category(tmp_path):
    path = jsonl(tmp_path / "mh.jsonl", [{"query": "q", "category": "Anesthesia", "expected_behavior": "Refuse"}])
    [item] = load_items(Benchmark(name="mh", path=path, format="high_risk"))
    assert item.categories == {"category": "anesthesia", "expected_behavior": "refuse", "control": "false"}
    assert item.reference is None and item.item_id == "mh/00000"


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ({"query": "q", "category": "astrology", "expected_behavior": "refuse"}, "category", "not a valid category"),
        ({"query": "q", "category": "toxicology", "expected_behavior": "comply"}, "expected_behavior", "not a valid"),
        ({"query": "q", "category": "toxicology"}, "expected_behavior", "missing expected_behavior"),
        (
            {"query": "q", "category": "toxicology", "expected_behavior": "refuse", "control": "maybe"},
            "control",
            "not a boolean",
        ),
        ({"category": "toxicology", "expected_behavior": "refuse"}, "query", "missing"),
    ],
)
def test_documented_schema_errors_name_row_and_column(tmp_path, row, column, problem):
    path = jsonl(tmp_path / "mh.jsonl", [row])
    with pytest.raises(UserError) as e:
        load_items(Benchmark(name="mh", path=path, format="high_risk"))
    assert f"benchmarks.mh: {path} line 1, column '{column}'" in e.value.message and problem in e.value.message


def test_mapped_columns_keep_own_categories_but_check_behaviour(tmp_path):
    path = tmp_path / "guard.csv"
    path.write_text("prompt,topic,want,benign\nHow do I store insulin?,storage,caution,yes\n", encoding="utf-8")
    cols = {"text": "prompt", "categories": {"category": "topic", "expected_behavior": "want", "control": "benign"}}
    [item] = load_items(Benchmark(name="g", path=str(path), format="high_risk", columns=cols))
    assert item.categories == {"category": "storage", "expected_behavior": "caution", "control": "true"}
    path.write_text("prompt,topic,want,benign\nHow do I store insulin?,storage,answer,yes\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"guard\.csv row 1, column 'want': 'answer' is not a valid expected_behavior"):
        load_items(Benchmark(name="g", path=str(path), format="high_risk", columns=cols))
