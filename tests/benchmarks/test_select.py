"""filters, limit, seeded sample and `per`: which items are kept, in which order, and the errors for unknown fields."""

from __future__ import annotations

from collections import Counter

import pytest

from evalsvc.benchmarks import load_items
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark


def msb(**kw) -> Benchmark:
    return Benchmark(name="msb", dataset="medsafetybench", **kw)


@pytest.fixture(scope="module")
def msb_items():
    return load_items(msb())


def principles(items):
    return Counter(it.categories["principle"] for it in items)


def is_subsequence(picked, items):
    pos = {it.item_id: i for i, it in enumerate(items)}
    idx = [pos[it.item_id] for it in picked]
    return idx == sorted(idx) and len(set(idx)) == len(idx)


def test_filters_keep_items_whose_field_is_allowed(msb_items):
    items = load_items(msb(filters={"principle": ["1", "2"], "source": ["llama2"]}))
    assert len(items) == 59 + 57
    assert principles(items) == {"1": 59, "2": 57}
    assert is_subsequence(items, msb_items)
    assert len(load_items(msb(filters={"principle": ["1", "2"]}))) == 50 + 50 + 59 + 57
    assert len(load_items(msb(filters={"split": ["test"]}))) == 900


def test_unknown_filter_field_names_the_manifest_path():
    with pytest.raises(
        UserError, match=r"benchmarks\.msb\.filters\.specialty: unknown field; filter on one of split, principle"
    ):
        load_items(msb(filters={"specialty": ["cardio"]}))


def test_filter_matching_nothing_lists_the_values_present():
    with pytest.raises(
        UserError, match=r"benchmarks\.msb\.filters: no item matches; values present are principle: 1, 2, .*9"
    ):
        load_items(msb(filters={"principle": ["10"]}))
    with pytest.raises(UserError, match=r"aspect: \(no item has this field\)"):
        load_items(msb(filters={"aspect": ["consent"]}))


def test_limit_keeps_the_first_n_after_filters(msb_items):
    items = load_items(msb(filters={"source": ["llama2"]}, select={"limit": 5}))
    assert [it.item_id for it in items] == [it.item_id for it in msb_items if it.categories["source"] == "llama2"][:5]
    assert len(load_items(msb(select={"limit": 5000}))) == 900


def test_sample_is_seeded_sized_and_in_original_order(msb_items):
    a = load_items(msb(select={"sample": 40, "seed": 7}))
    b = load_items(msb(select={"sample": 40, "seed": 7}))
    c = load_items(msb(select={"sample": 40, "seed": 8}))
    assert [it.item_id for it in a] == [it.item_id for it in b]
    assert {it.item_id for it in a} != {it.item_id for it in c}
    assert len(a) == 40 and is_subsequence(a, msb_items)
    assert a != msb_items[:40], "a sample is not the first N"
    assert len(load_items(msb(select={"sample": 10_000}))) == 900


def test_per_limit_takes_the_first_n_of_each_value(msb_items):
    items = load_items(msb(select={"limit": 2, "per": "principle"}))
    assert principles(items) == {str(p): 2 for p in range(1, 10)}
    firsts = [it for p in range(1, 10) for it in [x for x in msb_items if x.categories["principle"] == str(p)][:2]]
    assert {it.item_id for it in items} == {it.item_id for it in firsts}
    assert is_subsequence(items, msb_items)


def test_per_sample_is_seeded_per_value_and_independent_of_other_values(msb_items):
    items = load_items(msb(select={"sample": 3, "per": "principle", "seed": 1}))
    assert principles(items) == {str(p): 3 for p in range(1, 10)}
    assert is_subsequence(items, msb_items)
    again = load_items(msb(select={"sample": 3, "per": "principle", "seed": 1}))
    assert [it.item_id for it in items] == [it.item_id for it in again]
    only_p1 = load_items(msb(filters={"principle": ["1"]}, select={"sample": 3, "per": "principle", "seed": 1}))
    assert [it.item_id for it in only_p1] == [it.item_id for it in items if it.categories["principle"] == "1"]
    rows = Counter(it.item_id.rsplit("/", 1)[1] for it in items)
    assert rows.most_common(1)[0][1] < 9, "groups of the same size do not all pick the same rows"


def test_per_source_sample(msb_items):
    items = load_items(msb(select={"sample": 10, "per": "source", "seed": 3}))
    assert Counter(it.categories["source"] for it in items) == {"gpt4": 10, "llama2": 10}


def test_per_field_errors():
    with pytest.raises(UserError, match=r"benchmarks\.msb\.select\.per: unknown field 'specialty'"):
        load_items(msb(select={"limit": 1, "per": "specialty"}))
    with pytest.raises(UserError, match=r"benchmarks\.msb\.select\.per: no item has a 'aspect' field"):
        load_items(msb(select={"limit": 1, "per": "aspect"}))


def test_selection_on_the_medguard_sample_per_aspect():
    items = load_items(
        Benchmark(
            name="mg",
            dataset="medguard",
            filters={"question_type": ["safety"]},
            select={"limit": 1, "per": "principle"},
        )
    )
    assert len(items) == 5 and {it.categories["question_type"] for it in items} == {"safety"}
