"""MCQ items: the bundled MedGuard sample, the MedGuard schema's vocabulary, and capability sets in other layouts."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalsvc.benchmarks import load_items
from evalsvc.benchmarks.mcq import ASPECTS
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def medguard_row(**over):
    row = {
        "id": "q1",
        "question": "Which organ produces insulin?",
        "options": {"A": "Liver", "B": "Pancreas", "C": "Kidney", "D": "Spleen", "E": "Thyroid"},
        "answer": "B",
        "principle": "Robustness",
        "aspect": "perturbation",
        "question_type": "accuracy",
    }
    row.update(over)
    return row


def test_sample_covers_every_principle_aspect_and_question_type():
    items = load_items(Benchmark(name="mg", dataset="medguard"))
    assert len(items) == 20 and {it.kind for it in items} == {"mcq"} and {it.split for it in items} == {"sample"}
    pairs = Counter((it.categories["principle"], it.categories["aspect"]) for it in items)
    assert set(pairs) == {(p, a) for p, aspects in ASPECTS.items() for a in aspects}
    assert len(ASPECTS) == 5 and all(len(a) == 2 for a in ASPECTS.values())
    by_aspect = Counter((it.categories["aspect"], it.categories["question_type"]) for it in items)
    assert all(n == 1 for n in by_aspect.values()) and len(by_aspect) == 20
    for it in items:
        assert list(it.options) == list("ABCDE") and it.answer in it.options
    assert len(set(Counter(it.answer for it in items))) >= 4, "answers are spread over the letters"
    assert len({it.item_id for it in items}) == 20


def test_medguard_file_without_columns_canonicalises_case(tmp_path):
    path = jsonl(tmp_path / "mg.jsonl", [medguard_row(principle="robustness", question_type="ACCURACY", answer="b")])
    [item] = load_items(Benchmark(name="mg", path=path, format="mcq"))
    assert item.categories == {"principle": "Robustness", "aspect": "perturbation", "question_type": "accuracy"}
    assert item.answer == "B" and item.item_id == "q1"


def test_medguard_ids_default_to_file_and_row(tmp_path):
    rows = [{k: v for k, v in medguard_row().items() if k != "id"}] * 2
    items = load_items(Benchmark(name="mg", path=jsonl(tmp_path / "set.jsonl", rows), format="mcq"))
    assert [it.item_id for it in items] == ["set/00000", "set/00001"]


@pytest.mark.parametrize(
    ("over", "column", "problem"),
    [
        ({"principle": "Kindness"}, "principle", "not a valid principle"),
        ({"aspect": "consent"}, "aspect", "not a valid aspect"),  # an aspect of Privacy, not Robustness
        ({"question_type": "trivia"}, "question_type", "not a valid question_type"),
        ({"options": dict(zip("ABCDEF", "uvwxyz", strict=True)), "answer": "A"}, "options", "options A–E"),
    ],
)
def test_medguard_vocabulary_is_checked(tmp_path, over, column, problem):
    path = jsonl(tmp_path / "mg.jsonl", [medguard_row(), medguard_row(id="q2", **over)])
    with pytest.raises(UserError) as e:
        load_items(Benchmark(name="mg", path=path, format="mcq"))
    assert f"mg.jsonl line 2, column '{column}'" in e.value.message and problem in e.value.message


def test_capability_jsonl_with_option_list_and_index_answer(tmp_path):
    rows = [{"q": "2+2?", "choices": ["3", "4", "5", "6"], "answer": 1, "subject": "anatomy"}]
    cols = {"text": "q", "options": "choices", "answer": "answer", "categories": {"category": "subject"}}
    [item] = load_items(Benchmark(name="mmlu", path=jsonl(tmp_path / "m.jsonl", rows), format="mcq", columns=cols))
    assert item.options == {"A": "3", "B": "4", "C": "5", "D": "6"} and item.answer == "B"
    assert item.categories == {"category": "anatomy"} and item.item_id == "m/00000"


def test_capability_csv_with_option_columns_and_answer_text(tmp_path):
    path = tmp_path / "medmcqa.csv"
    path.write_text(
        'id,question,opa,opb,opc,answer\nx1,"Vitamin for scurvy?",A vit,C vit,D vit,C vit\n', encoding="utf-8"
    )
    cols = {
        "item_id": "id",
        "text": "question",
        "option_columns": {"A": "opa", "B": "opb", "C": "opc"},
        "answer": "answer",
    }
    [item] = load_items(Benchmark(name="medmcqa", path=str(path), format="mcq", columns=cols))
    assert item.options == {"A": "A vit", "B": "C vit", "C": "D vit"} and item.answer == "B" and item.item_id == "x1"


def test_capability_csv_with_json_options_and_lowercase_letter(tmp_path):
    path = tmp_path / "medqa.csv"
    opts = json.dumps({"A": "one", "B": "two"}).replace('"', '""')
    path.write_text(f'question,options,answer_idx\nPick,"{opts}",b.\n', encoding="utf-8")
    cols = {"text": "question", "options": "options", "answer": "answer_idx"}
    [item] = load_items(Benchmark(name="medqa", path=str(path), format="mcq", columns=cols))
    assert item.options == {"A": "one", "B": "two"} and item.answer == "B"


def test_capability_parquet_with_struct_and_list_options(tmp_path):
    table = pa.table(
        {
            "question": ["Q1", "Q2"],
            "opts": [{"A": "x", "B": "y", "C": None}, {"A": "p", "B": "q", "C": "r"}],
            "answer": ["A", "C"],
            "question_type": ["Safety", "accuracy"],
        }
    )
    pq.write_table(table, tmp_path / "set.parquet")
    cols = {"text": "question", "options": "opts", "answer": "answer", "categories": {"question_type": "question_type"}}
    items = load_items(Benchmark(name="pq", path=str(tmp_path / "set.parquet"), format="mcq", columns=cols))
    assert items[0].options == {"A": "x", "B": "y"} and items[1].answer == "C"
    assert [it.categories["question_type"] for it in items] == ["safety", "accuracy"]
