"""The peers suite's plumbing on a real plan (no engine, no peer installed): lm-eval's invocations and answers, the
inspect scorer's judge bodies, the rows' verdict counts and the ratios."""

from __future__ import annotations

import json

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.perf.e2e import baseline_job
from evalsvc.perf.e2e_baseline import judge_requests
from evalsvc.perf.peer_runs import SENTINEL, inspect_rows, lm_eval_groups, read_lm_eval_samples, side_row
from evalsvc.perf.peers import check_job, shape, summarise
from evalsvc.perf.report import BenchResult
from evalsvc.perf.suites import suite_options
from evalsvc.plan.grid import build_plan
from evalsvc.specs.rubric import load_rubric
from tests.perf.test_e2e import manifest

STRATEGIES = ["basic", "cot", "safety", "cot_safety"]


def grid(model_dir: str, **changes) -> dict:
    """The e2e tests' manifest as a peers grid: two greedy models × three benchmark formats × four strategies."""
    engine = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
    return manifest(model_dir, **{
        "name": "peers-test",
        "models": [{"name": "a", "source": model_dir, "engine_args": engine},
                   {"name": "b", "source": model_dir, "engine_args": engine}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"limit": 2}},
                       {"name": "mcq", "dataset": "medguard", "select": {"limit": 2}},
                       {"name": "highrisk", "dataset": "medharm", "select": {"limit": 2}}],
        "strategies": STRATEGIES, **changes})  # fmt: skip


@pytest.fixture(scope="module")
def plan_and_job(tiny_model):
    plan = build_plan(validate_manifest(grid(str(tiny_model))))
    return plan, baseline_job(plan)


def test_the_grid_is_models_times_benchmarks_times_strategies_with_its_judged_share(plan_and_job):
    plan, job = plan_and_job
    assert shape(plan, job) == {"models": 2, "benchmarks": 3, "strategies": 4, "generations": 2 * 3 * 2 * 4,
                                "judged": 2 * 2 * 2 * 4}  # fmt: skip


def test_lm_eval_runs_once_per_benchmark_and_system_prompt_and_covers_every_row_once(plan_and_job):
    _, job = plan_and_job
    model = job["models"][0]
    groups = lm_eval_groups(model)
    systems = {(r["benchmark"], next((m["content"] for m in r["messages"] if m["role"] == "system"), None))
               for r in model["rows"]}  # fmt: skip
    assert set(groups) == systems and len({s for _, s in systems}) >= 2  # the safety prompt is its own call
    ids = [r["id"] for rows in groups.values() for r in rows]
    assert sorted(ids) == sorted(r["key"] for r in model["rows"])
    for (bench, system), rows in groups.items():
        assert {r["task"] for r in rows} <= {f"evalsvc_{bench}_{s}" for s in STRATEGIES}
        assert all(r["system"] == system and r["user"] for r in rows)


def test_lm_eval_answers_are_read_back_by_row_key_from_its_sample_logs(tmp_path):
    folder = tmp_path / "out" / "__models__tiny"
    folder.mkdir(parents=True)
    lines = [{"doc": {"id": "k1", "user": "q"}, "resps": [["raw one"]], "filtered_resps": ["one"]},
             {"doc": {"id": "k2", "user": "q"}, "resps": [["two"]]}]  # fmt: skip
    (folder / "samples_evalsvc_msb_basic_2026-12-07T04-00-00.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    (folder / "results_2026-12-07T04-00-00.json").write_text("{}")
    assert read_lm_eval_samples(tmp_path / "out") == {"k1": "one", "k2": "two"}


def test_the_inspect_scorer_fills_in_the_answer_to_get_the_judge_stages_own_body(plan_and_job):
    _, job = plan_and_job
    model = job["models"][1]
    rows = inspect_rows(job, model)
    assert [r["id"] for r in rows] == [r["key"] for r in model["rows"]]
    kinds = {r["key"]: r["benchmark_kind"] for r in model["rows"]}
    assert all((r["judge"] is None) == (kinds[r["id"]] == "mcq") for r in rows)  # MCQ answers are parsed, not judged
    answer = "I cannot help with that."
    expected = dict(judge_requests({**job, "models": [model]}, {r["key"]: answer for r in model["rows"]}))
    for r in rows:
        if r["judge"] is not None:
            assert json.dumps(r["judge"]).count(SENTINEL) == 1
            filled = [{**m, "content": m["content"].replace(SENTINEL, answer)} for m in r["judge"]["messages"]]
            assert {**r["judge"], "messages": filled} == expected[r["id"]]
            rubric = load_rubric(job["judge"]["rubrics"][kinds[r["id"]]])
            assert r["judge"]["structured_outputs"] == rubric.guided and "regex" in rubric.guided


def test_a_peers_row_counts_the_verdicts_the_rubric_parser_reads(plan_and_job):
    _, job = plan_and_job
    kinds = {r["key"]: r["benchmark_kind"] for m in job["models"] for r in m["rows"]}
    judged = sorted(k for k, kind in kinds.items() if kind == "harm")
    verdicts = {judged[0]: "#reason: declines\n#score: 1", judged[1]: "I think it is fine", judged[2]: "#score: 9"}
    row = side_row("peer", job, {k: "x" for k in judged}, verdicts, 12.5, note="n")
    assert (row["answers"], row["verdicts"], row["verdicts_parsed"], row["wall_s"]) == (len(judged), 3, 1, 12.5)


def test_what_the_peers_cannot_run_alike_is_refused(tiny_model):
    hot = baseline_job(build_plan(validate_manifest(grid(str(tiny_model), sampling={"max_tokens": 8,
                                                                                   "temperature": 0.7}))))  # fmt: skip
    with pytest.raises(UserError, match=r"temperature 0.7.*sampling.temperature: 0"):
        check_job(hot)
    with pytest.raises(UserError, match="judge.model"):
        check_job({**hot, "judge": None})


def test_ratios_are_evalsvcs_wall_over_each_finished_peer_and_the_best():
    result = BenchResult("peers", {})
    ours = result.add(system="evalsvc run", wall_s=100.0)
    result.add(system="lm-eval", wall_s=400.0)
    result.add(system="inspect", wall_s=250.0)
    result.add(system="broken", note="failed: exit 1")
    summarise(result, ours)
    assert result.ratios == {"wall evalsvc ÷ lm-eval": 0.25, "wall evalsvc ÷ inspect": 0.4,
                             "wall evalsvc ÷ best peer": 0.4}  # fmt: skip
    assert "0.5" in result.notes[0]


def test_the_suite_takes_a_manifest_and_the_peers():
    assert suite_options("peers") == ["manifest", "peers"]
