"""Expanding a manifest into a Plan: grid counts, engines (LoRA on its base), totals, stable ids and record keys.

Uses the bundled MedGuard / MedHarm samples and MedSafetyBench from the pinned copy; expected counts are computed by hand.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from evalsvc.benchmarks.registry import MEDGUARD, MEDHARM
from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import build_plan, data_conn, expand_item

N_GUARD = MEDGUARD.splits["sample"]  # bundled samples: counted from the files, not from the plan
N_HARM = MEDHARM.splits["sample"]
MSB_LIMIT = 5
JUDGE = {"url": "http://127.0.0.1:9/v1", "model_name": "judge"}


def manifest(**changes) -> dict:
    base = {
        "name": "grid",
        "models": [
            {"name": "base", "source": "org/base", "revision": "r1", "engine_args": {"dtype": "bfloat16"}, "replicas": 2},
            {"name": "base-lora", "base": "base", "adapter": "./adapters/medical"},
            {"name": "other", "source": "org/other", "sampling": {"n": 3, "temperature": 0.8}},
        ],
        "benchmarks": [
            {"name": "msb", "dataset": "medsafetybench", "select": {"limit": MSB_LIMIT}},
            {"name": "guard", "dataset": "medguard"},
            {"name": "harm", "dataset": "medharm"},
        ],
        "strategies": ["basic", "safety", {"name": "mine", "user_template": "Patient asks: {question}"}],
        "sampling": {"n": 2, "max_tokens": 64, "seed": 10},
        "judge": JUDGE,
        "output": {"uri": "./runs"},
    }
    return {**base, **changes}


def plan_of(**changes):
    return build_plan(validate_manifest(manifest(**changes)))


@pytest.fixture(scope="module")
def plan():
    return plan_of()


def test_grid_is_models_x_benchmarks_x_strategies(plan):
    assert len(plan.cells) == 3 * 3 * 3
    assert [(c.model, c.benchmark, c.strategy) for c in plan.cells[:4]] == [
        ("base", "msb", "basic"), ("base", "msb", "safety"), ("base", "msb", "mine"), ("base", "guard", "basic"),
    ]
    assert {b.name: b.n_items for b in plan.benchmarks} == {"msb": MSB_LIMIT, "guard": N_GUARD, "harm": N_HARM}
    assert {b.name: b.kind for b in plan.benchmarks} == {"msb": "harm", "guard": "mcq", "harm": "high_risk"}
    samples = {c.model: c.samples for c in plan.cells}
    assert samples == {"base": 2, "base-lora": 2, "other": 3}  # manifest n, and the per-model override


def test_lora_is_served_by_its_base_engine(plan):
    assert plan.engines() == {"base": ["base", "base-lora"], "other": ["other"]}
    lora = plan.model("base-lora")
    assert (lora.source, lora.revision, lora.adapter) == ("org/base", "r1", "./adapters/medical")
    assert lora.engine_args == plan.model("base").engine_args
    assert lora.fingerprint != plan.model("base").fingerprint  # the adapter changes outputs


def test_totals_by_hand(plan):
    items = MSB_LIMIT + N_GUARD + N_HARM
    per_strategy = {"base": 2 * items, "base-lora": 2 * items, "other": 3 * items}
    generations = 3 * sum(per_strategy.values())
    mcq = 3 * (2 + 2 + 3) * N_GUARD
    t = plan.totals()
    assert t["cells"] == 27 and t["models"] == 3 and t["items"] == items
    assert t["generations"] == generations
    assert t["mcq_parsed"] == mcq
    assert t["judge_calls"] == generations - mcq
    assert t["engine_loads"] == 2 + 1  # base's 2 replicas (shared with its LoRA) + other's 1
    assert t["max_completion_tokens"] == generations * 64
    assert 0 < t["est_prompt_tokens"] < generations * 1000


def test_rows_count_equals_totals_and_keys_are_unique(plan):
    counts = {m.name: sum(1 for _ in plan.rows(m.name)) for m in plan.models}
    assert sum(counts.values()) == plan.totals()["generations"]
    for m in plan.models:
        assert counts[m.name] == sum(c.generations for c in plan.cells if c.model == m.name)
    keys = [r["record_key"] for m in plan.models for r in plan.rows(m.name)]
    assert len(set(keys)) == len(keys)


def test_rows_have_exactly_the_declared_plan_columns(plan):
    from evalsvc.store.row import PLAN_COLUMNS

    for m in plan.models:
        for row in plan.rows(m.name):
            assert tuple(row) == PLAN_COLUMNS


def test_rows_carry_cell_sampling_and_item_fields(plan):
    rows = list(plan.rows("other"))
    cells = {c.cell_id: c for c in plan.cells}
    assert Counter(r["cell_id"] for r in rows) == {c.cell_id: c.generations for c in plan.cells if c.model == "other"}
    for r in rows:
        assert (cells[r["cell_id"]].strategy, cells[r["cell_id"]].benchmark) == (r["strategy"], r["benchmark"])
    first = [r for r in rows if r["item_id"] == rows[0]["item_id"] and r["strategy"] == rows[0]["strategy"]]
    assert [r["sample_index"] for r in first] == [0, 1, 2]
    assert [json.loads(r["sampling"]) for r in first] == [
        {"temperature": 0.8, "top_p": 1.0, "max_tokens": 64, "seed": 10 + k} for k in range(3)
    ]
    mcq = next(r for r in rows if r["benchmark"] == "guard")
    assert mcq["answer"] and mcq["option_letters"] and json.loads(mcq["options_json"])
    msg = json.loads(mcq["messages_json"])
    assert msg[-1]["content"].startswith(mcq["question"]) and "Answer: <letter>" in msg[-1]["content"]
    harm = next(r for r in rows if r["benchmark"] == "msb")
    assert harm["principle"] in {str(p) for p in range(1, 10)} and harm["source"] in {"gpt4", "llama2"}
    assert harm["model_source"] == "org/other" and harm["lora"] is None and harm["candidate"] == "other"
    lora_row = next(plan.rows("base-lora"))
    assert lora_row["lora"] == "base-lora" and lora_row["model_source"] == "org/base"


def test_custom_strategy_prompt_is_rendered_into_rows(plan):
    row = next(r for r in plan.rows("base") if r["strategy"] == "mine" and r["benchmark"] == "msb")
    assert json.loads(row["messages_json"]) == [{"role": "user", "content": f"Patient asks: {row['question']}"}]


def keys_of(p) -> dict:
    rows = (r for m in p.models for r in p.rows(m.name))
    return {(r["candidate"], r["cell_id"], r["item_id"], r["sample_index"]): r["record_key"] for r in rows}


def test_cell_ids_and_record_keys_are_stable_across_builds(plan):
    again = plan_of()
    assert [c.cell_id for c in again.cells] == [c.cell_id for c in plan.cells]
    assert keys_of(again) == keys_of(plan)
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(plan.to_json(), sort_keys=True)


def with_model(**engine) -> dict:
    models = manifest()["models"]
    return {"models": [{**models[0], **engine}, *models[1:]]}


@pytest.mark.parametrize(
    ("label", "changes", "changed"),
    [
        ("revision", with_model(revision="r2"), {"base", "base-lora"}),
        ("dtype", with_model(engine_args={"dtype": "float16"}), {"base", "base-lora"}),
        ("max_model_len", with_model(engine_args={"dtype": "bfloat16", "max_model_len": 2048}), {"base", "base-lora"}),
        ("chat_template", with_model(chat_template="{{ messages }}"), {"base", "base-lora"}),
        ("seed", {"sampling": {"n": 2, "max_tokens": 64, "seed": 11}}, {"base", "base-lora", "other"}),
        ("max_tokens", {"sampling": {"n": 2, "max_tokens": 65, "seed": 10}}, {"base", "base-lora", "other"}),
        # `other` overrides temperature (and n) itself: the manifest-wide temperature does not reach it
        ("temperature", {"sampling": {"n": 2, "max_tokens": 64, "seed": 10, "temperature": 0.3}}, {"base", "base-lora"}),
        ("tensor_parallel_size", with_model(engine_args={"dtype": "bfloat16", "tensor_parallel_size": 4}), set()),
        ("gpu_memory_utilization", with_model(engine_args={"dtype": "bfloat16", "gpu_memory_utilization": 0.5}), set()),
        ("replicas", with_model(replicas=8), set()),
        ("resources", {"resources": {"gpus_per_replica": 1, "batch_size": 128}}, set()),
        ("judge", {"judge": {**JUDGE, "model_name": "other-judge"}}, set()),
        ("output", {"output": {"uri": "s3://bucket/elsewhere"}}, set()),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_record_keys_change_only_with_what_changes_output(plan, label, changes, changed):
    before, after = keys_of(plan), keys_of(plan_of(**changes))
    assert before.keys() == after.keys()
    moved = {k[0] for k in before if before[k] != after[k]}
    assert moved == changed, label
    if changed:  # every record of an affected model moves, none of the others
        assert all(before[k] != after[k] for k in before if k[0] in changed)


def test_more_samples_keep_the_keys_of_the_existing_ones(plan):
    before, after = keys_of(plan), keys_of(plan_of(sampling={"n": 4, "max_tokens": 64, "seed": 10}))
    assert len(after) > len(before)
    assert all(after[k] == v for k, v in before.items() if k[0] != "other")  # `other` keeps its own n=3


def test_prompt_change_moves_only_that_strategys_keys(plan):
    strategies = ["basic", "safety", {"name": "mine", "user_template": "The patient asks: {question}"}]
    before, after = keys_of(plan), keys_of(plan_of(strategies=strategies))
    cells = {c.cell_id: c.strategy for c in plan.cells}
    moved = {cells[k[1]] for k in before if before[k] != after[k]}
    assert moved == {"mine"}


def test_expand_item_is_the_unit_of_rows(plan):
    m, b = plan.model("other"), plan.benchmarks[1]
    item = plan.items[b.name][0]
    rows = list(expand_item(item, m, b, plan.strategies))
    assert len(rows) == len(plan.strategies) * m.sampling.n
    same = [r for r in plan.rows("other") if r["benchmark"] == b.name and r["item_id"] == item.item_id]
    assert [r["record_key"] for r in rows] == [r["record_key"] for r in same]


def test_to_json_is_serialisable_and_consistent(plan):
    doc = json.loads(json.dumps(plan.to_json()))
    assert doc["name"] == "grid" and doc["strategies"] == ["basic", "safety", "mine"]
    assert doc["engines"] == plan.engines() and doc["totals"] == plan.totals()
    assert sum(c["generations"] for c in doc["cells"]) == doc["totals"]["generations"]
    assert sum(c["judge_calls"] for c in doc["cells"]) == doc["totals"]["judge_calls"]
    assert {b["name"]: b["version"] for b in doc["benchmarks"]}["msb"] == "medsafetybench@191aa79"


def test_every_benchmark_problem_is_reported_at_once():
    benches = [
        {"name": "g", "dataset": "medguard", "split": "test"},
        {"name": "c", "path": "./missing-dir/x.jsonl", "format": "harm"},
    ]
    with pytest.raises(UserError) as e:
        plan_of(benchmarks=benches)
    head, *lines = e.value.lines()
    assert head == "2 problems in the benchmarks"
    assert lines[0].startswith("benchmarks.g.split:") and lines[1].startswith("benchmarks.c.path:")


def test_data_conn_is_resolved_only_for_s3_benchmarks(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EVALSVC_TEST_KEY", raising=False)
    creds = {"access_key_id": "${EVALSVC_TEST_KEY}", "secret_access_key": "${EVALSVC_TEST_KEY}"}
    out = {"uri": "s3://bucket/runs", "s3": creds}
    local = validate_manifest(manifest(output=out))
    assert data_conn(local) is None  # unset credentials do not matter when no benchmark reads S3
    on_s3 = [{"name": "c", "path": "s3://bucket/q.jsonl", "format": "harm"}]
    remote = validate_manifest(manifest(output=out, benchmarks=on_s3))
    with pytest.raises(UserError, match="EVALSVC_TEST_KEY is not set"):
        data_conn(remote)
    monkeypatch.setenv("EVALSVC_TEST_KEY", "k")
    assert data_conn(remote).access_key_id == "k"


def test_items_with_identical_prompts_keep_their_own_record_keys(tmp_path):
    """Five items sharing one text are five items: each gets its own record (none is merged into another)."""
    q = {"question": "Should I stop my antibiotics early?", "options": {"A": "Yes", "B": "No"}, "answer": "B",
         "principle": "Truthfulness", "aspect": "factuality", "question_type": "safety"}  # fmt: skip
    path = tmp_path / "same.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", **q}) + "\n" for i in range(5)))
    p = plan_of(models=[{"name": "m", "source": "org/m"}], strategies=["basic"], sampling={"max_tokens": 8},
                benchmarks=[{"name": "mine", "path": str(path), "format": "mcq"}])  # fmt: skip
    rows = list(p.rows("m"))
    assert len({r["messages_json"] for r in rows}) == 1
    assert len({r["record_key"] for r in rows}) == len(rows) == 5


# --- rubric benchmarks: one grader call per criterion ------------------------------------------------------------

RUBRIC_SAMPLE = {"name": "hb", "path": "../evalsvc/benchmarks/samples/rubric_sample.jsonl", "format": "rubric"}
SAMPLE_CRITERIA = 35  # counted by hand from the bundled file: 5 + 5 + 4 + 4 + 4 + 4 + 4 + 5


def rubric_plan(**changes):
    from pathlib import Path

    from evalsvc.manifest.load import parse_manifest

    text = json.dumps(manifest(benchmarks=[RUBRIC_SAMPLE, {"name": "guard", "dataset": "medguard"}], **changes))
    return build_plan(parse_manifest(text, source="test", base=Path(__file__).resolve().parents[2] / "manifests"))


def test_rubric_cells_count_criteria_as_judge_calls():
    p = rubric_plan()
    assert {b.name: (b.kind, b.n_items, b.n_criteria) for b in p.benchmarks} == {
        "hb": ("rubric", 8, SAMPLE_CRITERIA), "guard": ("mcq", N_GUARD, 0)}  # fmt: skip
    cell = next(c for c in p.cells if c.model == "other" and c.benchmark == "hb" and c.strategy == "safety")
    assert (cell.generations, cell.criteria, cell.judge_calls) == (8 * 3, SAMPLE_CRITERIA * 3, SAMPLE_CRITERIA * 3)
    t = p.totals()
    samples = 2 + 2 + 3  # base, base-lora (manifest n=2), other (n=3)
    assert t["criteria"] == t["judge_calls"] == 3 * samples * SAMPLE_CRITERIA  # 3 strategies; MCQ needs no judge
    assert t["generations"] == 3 * samples * (8 + N_GUARD)
    doc = json.loads(json.dumps(p.to_json()))
    assert sum(c["criteria"] for c in doc["cells"]) == t["criteria"]


def test_rubric_rows_carry_the_grading_context():
    p = rubric_plan(strategies=["basic"])
    rows = [r for r in p.rows("other") if r["benchmark"] == "hb"]
    assert len(rows) == 8 * 3 and sum(r["n_criteria"] for r in rows) == SAMPLE_CRITERIA * 3
    ctx = json.loads(rows[0]["rubric_json"])
    assert set(ctx) == {"conversation", "criteria", "tags"} and json.loads(rows[0]["messages_json"]) == ctx["conversation"]
    assert all(r["rubric_json"] is None and r["n_criteria"] == 0 for r in p.rows("other") if r["benchmark"] == "guard")
