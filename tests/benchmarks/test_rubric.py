"""Rubric benchmarks (HealthBench format): the bundled sample loads; every problem of a broken file is its own line
naming file, line and field; the conversation reaches the candidate as it is, with the strategy's system prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsvc.benchmarks import benchmark_kind, load_items
from evalsvc.benchmarks.rubric import criterion_id, rubric_context
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark, CustomStrategy
from evalsvc.strategies import BUILTINS, get_strategy

SAMPLE = Path(__file__).resolve().parents[2] / "evalsvc" / "benchmarks" / "samples" / "rubric_sample.jsonl"
USER = {"role": "user", "content": "Is a fever of 38 C dangerous?"}
GOOD = {
    "prompt": [USER],
    "rubrics": [{"criterion": "Says when to seek care.", "points": 5, "tags": ["axis:completeness"]},
                {"criterion": "Recommends aspirin for a child.", "points": -4, "tags": ["axis:accuracy"]}],
    "example_tags": ["theme:emergency_referrals"],
    "prompt_id": "p-1",
}  # fmt: skip


def write(tmp_path: Path, *rows, name: str = "hb.jsonl") -> str:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def load(path: str, **extra):
    return load_items(Benchmark(name="hb", path=path, format="rubric", **extra))


def problems(path: str) -> list[str]:
    with pytest.raises(UserError) as e:
        load(path)
    assert e.value.exit_code == 2
    return e.value.lines()


def with_(**changes) -> dict:
    return {**json.loads(json.dumps(GOOD)), **changes}


def test_bundled_sample_loads_in_the_healthbench_schema():
    items = load(str(SAMPLE))
    assert len(items) == 8 and all(i.kind == "rubric" for i in items)
    assert sum(len(i.criteria) for i in items) == 35
    assert sum(c["points"] < 0 for i in items for c in i.criteria) == 11
    assert sum(len(i.conversation) > 1 for i in items) == 4  # three multi-turn, one with its own system turn
    assert {t.split(":")[0] for i in items for c in i.criteria for t in c["tags"]} == {"level", "axis"}
    assert all(len(i.tags) == 1 and i.tags[0].startswith("theme:") for i in items)
    assert [i.item_id for i in items][:2] == ["rs-001", "rs-002"]
    assert items[0].reference.startswith("A temperature of 38.5 C")  # ideal_completions_data.ideal_completion
    assert benchmark_kind(Benchmark(name="hb", path=str(SAMPLE), format="rubric")) == "rubric"


def test_item_fields(tmp_path):
    (item,) = load(write(tmp_path, GOOD))
    assert (item.item_id, item.text, item.conversation, item.tags) == ("p-1", USER["content"], [USER],
                                                                     ["theme:emergency_referrals"])  # fmt: skip
    assert [c["points"] for c in item.criteria] == [5.0, -4.0]
    assert item.criteria[0]["criterion_id"] == criterion_id(0, "Says when to seek care.", 5.0)
    ctx = json.loads(rubric_context(item))
    assert ctx == {"conversation": [USER], "criteria": item.criteria, "tags": ["theme:emergency_referrals"]}


def test_optional_keys_and_default_ids(tmp_path):
    row = {"prompt": [USER], "rubrics": [{"criterion": "Helps.", "points": 3}]}
    items = load(write(tmp_path, row, "", row, name="mine.jsonl"))
    assert [i.item_id for i in items] == ["mine/00000", "mine/00001"]  # blank lines are not rows
    assert items[0].tags == [] and items[0].criteria[0]["tags"] == [] and items[0].reference is None


def test_criterion_id_follows_text_and_points():
    assert criterion_id(0, "a", 5.0) != criterion_id(0, "a", 4.0) != criterion_id(0, "b", 5.0)
    assert criterion_id(1, "a", 5.0).startswith("01-") and criterion_id(1, "a", 5.0) == criterion_id(1, "a", 5)


BAD = [
    ("rubrics null", with_(rubrics=None), "column 'rubrics': expected a non-empty list"),
    ("no rubrics key", {k: v for k, v in GOOD.items() if k != "rubrics"}, "column 'rubrics': missing"),
    ("empty rubrics", with_(rubrics=[]), "got an empty list"),
    ("criterion without points", with_(rubrics=[{"criterion": "Helps."}]),
     "column 'rubrics[0].points': missing: a criterion without points"),
    ("points as text", with_(rubrics=[{"criterion": "Helps.", "points": "5"}]),
     "column 'rubrics[0].points': '5' is not a number"),
    ("points as bool", with_(rubrics=[{"criterion": "Helps.", "points": True}]), "True is not a number"),
    ("points null", with_(rubrics=[{"criterion": "Helps.", "points": None}]), "None is not a number"),
    ("empty criterion", with_(rubrics=[{"criterion": " ", "points": 2}]), "column 'rubrics[0].criterion'"),
    ("only negative points", with_(rubrics=[{"criterion": "Bad.", "points": -3}]), "no criterion has positive points"),
    ("tags not a list", with_(rubrics=[{"criterion": "Helps.", "points": 2, "tags": "axis:accuracy"}]),
     "column 'rubrics[0].tags'"),
    ("empty conversation", with_(prompt=[]), "column 'prompt': empty conversation"),
    ("no prompt", {k: v for k, v in GOOD.items() if k != "prompt"}, "column 'prompt': missing"),
    ("prompt as text", with_(prompt="hello"), "expected a list of {role, content} turns, got str"),
    ("last turn the assistant's", with_(prompt=[USER, {"role": "assistant", "content": "It depends."}]),
     "column 'prompt[1].role': the last turn is the assistant's"),
    ("unknown role", with_(prompt=[{"role": "doctor", "content": "x"}, USER]), "column 'prompt[0].role': 'doctor'"),
    ("late system turn", with_(prompt=[USER, {"role": "system", "content": "x"}, USER]),
     "column 'prompt[1].role': a system turn may only come first"),
    ("empty content", with_(prompt=[{"role": "user", "content": ""}]), "column 'prompt[0].content'"),
    ("example tags of numbers", with_(example_tags=[1]), "column 'example_tags'"),
    ("not json", "{prompt: [", "not valid JSON"),
    ("not an object", "[1, 2]", "expected a JSON object, got list"),
]


@pytest.mark.parametrize(("row", "expect"), [pytest.param(r, e, id=n) for n, r, e in BAD])
def test_each_bad_row_is_one_error_naming_file_line_and_field(tmp_path, row, expect):
    path = write(tmp_path, GOOD | {"prompt_id": "ok"}, row)
    (line,) = problems(path)
    assert line.startswith(f"benchmarks.hb: {path} line 2") and expect in line, line


def test_every_problem_of_a_file_is_reported_at_once(tmp_path):
    path = write(tmp_path, with_(prompt=[], rubrics=[{"criterion": "x"}, {"criterion": "y", "points": "ten"}]),
                 GOOD, with_(prompt=[USER, {"role": "assistant", "content": "ok"}], prompt_id="p-2"))  # fmt: skip
    lines = problems(path)
    assert lines[0] == f"benchmarks.hb: {path} has 4 problems; fix the rows below"
    assert [line.split(": ", 2)[1] for line in lines[1:]] == [f"{path} line 1, column 'prompt'",
        f"{path} line 1, column 'rubrics[0].points'", f"{path} line 1, column 'rubrics[1].points'",
        f"{path} line 3, column 'prompt[1].role'"]  # fmt: skip
    assert not any("duplicate" in line for line in lines)  # line 1 was broken: line 2 holds the first p-1


def test_duplicate_ids_and_a_flood_of_problems(tmp_path):
    (dup,) = problems(write(tmp_path, GOOD, GOOD))
    assert "line 2, column 'prompt_id': duplicate id 'p-1' (first at line 1)" in dup
    lines = problems(write(tmp_path, *[with_(prompt=[], prompt_id=str(i)) for i in range(80)]))
    assert len(lines) == 1 + 50 + 1 and lines[-1].startswith("… and 30 more problems")


@pytest.mark.parametrize(("name", "content", "expect"), [
    ("hb.csv", b"prompt,rubrics\n", "format rubric reads JSONL"),
    ("hb.jsonl", b"", "has no examples"),
    ("hb.jsonl", b"\xff\xfe{}\n", "line 1: not UTF-8"),
])  # fmt: skip
def test_file_level_problems(tmp_path, name, content, expect):
    (tmp_path / name).write_bytes(content)
    (line,) = problems(str(tmp_path / name))
    assert expect in line


def test_columns_are_refused_for_rubric_files(tmp_path):
    with pytest.raises(ValueError, match="format rubric reads the HealthBench layout"):
        Benchmark(name="hb", path="x.jsonl", format="rubric", columns={"text": "q"})


def test_select_and_filters_apply(tmp_path):
    assert [i.item_id for i in load(str(SAMPLE), select={"limit": 3})] == ["rs-001", "rs-002", "rs-003"]
    assert len(load(str(SAMPLE), select={"sample": 2, "seed": 1})) == 2


# --- how the conversation reaches the candidate ---------------------------------------------------------------


def test_conversation_is_sent_as_is_with_the_strategys_system_prompt():
    items = {i.item_id: i for i in load(str(SAMPLE))}
    multi = items["rs-002"]
    assert BUILTINS["basic"].render(multi) == multi.conversation
    assert BUILTINS["cot"].render(multi) == multi.conversation  # answer formats never touch the user's turns
    safety = BUILTINS["safety"].render(multi)
    assert safety[0] == {"role": "system", "content": BUILTINS["safety"].system} and safety[1:] == multi.conversation


def test_strategy_system_prompt_merges_with_the_conversations_own():
    own = load(str(SAMPLE))[6]
    assert own.conversation[0]["role"] == "system"
    custom = get_strategy(CustomStrategy(name="terse", system="Answer in one sentence."))
    msgs = custom.render(own)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"] == f"Answer in one sentence.\n\n{own.conversation[0]['content']}"
    assert BUILTINS["basic"].render(own) == own.conversation
