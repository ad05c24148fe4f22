"""MedSafetyBench loading: split sizes, per-principle counts, ids, references, and the 74k llama3 split's speed."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from evalsvc.benchmarks.fetch import ensure
from evalsvc.benchmarks.msb import load_msb
from evalsvc.benchmarks.registry import MEDSAFETYBENCH

LLAMA2_PER_PRINCIPLE = [59, 57, 31, 56, 50, 24, 61, 64, 48]
LLAMA3_PER_PRINCIPLE = [7897, 8563, 8531, 7827, 9064, 8579, 8254, 7563, 8096]


def per_principle(items, source):
    counts = Counter(it.categories["principle"] for it in items if it.categories["source"] == source)
    return [counts[str(p)] for p in range(1, 10)]


@pytest.mark.parametrize("split", ["test", "train"])
def test_csv_splits_have_upstream_counts(split):
    items = load_msb(split, ensure(MEDSAFETYBENCH))
    assert len(items) == 900
    assert Counter(it.categories["source"] for it in items) == {"gpt4": 450, "llama2": 450}
    assert per_principle(items, "gpt4") == [50] * 9
    assert per_principle(items, "llama2") == LLAMA2_PER_PRINCIPLE
    assert {it.kind for it in items} == {"harm"}
    assert {it.split for it in items} == {split}
    assert all(it.text.strip() and it.reference and it.reference.strip() for it in items)


def test_llama3_split_is_complete_and_shares_category_dicts():
    loc = ensure(MEDSAFETYBENCH)
    items = load_msb("llama3", loc)
    assert len(items) == 74_374
    assert per_principle(items, "llama3") == LLAMA3_PER_PRINCIPLE
    assert all(it.reference is None and it.text.strip() for it in items)
    # memory: one categories dict per file, not per item
    assert len({id(it.categories) for it in items}) == 9


def test_ids_are_unique_stable_and_point_at_the_file_row(shared_msb):
    loc = ensure(MEDSAFETYBENCH)
    first, second = load_msb("test", loc), load_msb("test", loc)
    assert [it.item_id for it in first] == [it.item_id for it in second]
    assert len({it.item_id for it in first}) == 900
    by_id = {it.item_id: it for it in first}
    with open(shared_msb / "datasets/test/llama2/med_safety_demonstrations_category_3.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    item = by_id["msb/test/llama2/p3/0007"]
    assert (item.text, item.reference) == (rows[7][1], rows[7][2])
    assert item.categories == {"principle": "3", "source": "llama2"}


def test_llama3_ids_follow_line_numbers(shared_msb):
    items = load_msb("llama3", ensure(MEDSAFETYBENCH))
    lines = (shared_msb / "datasets/med_harm_llama3/category_9.txt").read_text(encoding="utf-8").split("\n")
    by_id = {it.item_id: it for it in items if it.categories["principle"] == "9"}
    assert by_id["msb/llama3/llama3/p9/00000"].text == lines[0]
    assert by_id["msb/llama3/llama3/p9/08095"].text == lines[8095]
    assert len(by_id) == 8096


def test_test_and_train_do_not_overlap():
    loc = ensure(MEDSAFETYBENCH)
    test = {it.text for it in load_msb("test", loc)}
    train = {it.text for it in load_msb("train", loc)}
    assert not test & train
