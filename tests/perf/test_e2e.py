"""The e2e suite's plumbing: the baseline's job mirrors the plan, its judge requests are the judge stage's, and the
rows and ratios come out of the timings as defined (synthetic timings; no engine, no Ray)."""

from __future__ import annotations

import json

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.perf.e2e import baseline_job, baseline_row, evalsvc_row, headline
from evalsvc.perf.e2e_baseline import judge_requests, judge_sampling, sampling_kwargs
from evalsvc.perf.report import BenchResult
from evalsvc.perf.suites import suite_options
from evalsvc.plan.grid import build_plan
from evalsvc.specs.rubric import load_rubric


def manifest(model_dir: str, **changes) -> dict:
    engine = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
    m = {
        "name": "e2e-test",
        "models": [{"name": "a", "source": model_dir, "engine_args": engine},
                   {"name": "b", "source": model_dir, "engine_args": engine, "sampling": {"temperature": 0.7}}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"sample": 1, "per": "principle"}},
                       {"name": "mcq", "dataset": "medguard", "select": {"limit": 3}}],
        "strategies": ["basic", "safety"],
        "sampling": {"max_tokens": 8, "temperature": 0.0},
        "judge": {"model": {"source": model_dir, "engine_args": {**engine, "max_model_len": 2048}}, "max_tokens": 40},
        "output": {"uri": "/tmp/unused"},
        "resources": {"gpus_per_replica": 0},
    }  # fmt: skip
    m.update(changes)
    return m


@pytest.fixture(scope="module")
def plan_and_job(tiny_model):
    plan = build_plan(validate_manifest(manifest(str(tiny_model))))
    return plan, baseline_job(plan)


def test_the_job_has_every_generation_of_every_model_as_the_plan_renders_it(plan_and_job, tiny_model):
    plan, job = plan_and_job
    assert [m["name"] for m in job["models"]] == ["a", "b"]
    for m in job["models"]:
        rows = list(plan.rows(m["name"]))
        assert [r["key"] for r in m["rows"]] == [r["record_key"] for r in rows]
        assert [r["messages"] for r in m["rows"]] == [json.loads(r["messages_json"]) for r in rows]
        assert [r["sampling"] for r in m["rows"]] == [json.loads(r["sampling"]) for r in rows]
        assert m["source"] == str(tiny_model)
        assert m["engine_kwargs"].items() >= {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}.items()
    assert job["cpu"] is True
    judge = job["judge"]
    assert judge["engine_kwargs"]["max_model_len"] == 2048 and judge["source"] == str(tiny_model)
    assert judge["rubrics"] == {"harm": "msb-harm"}
    assert judge["settings"] == {"temperature": 0.0, "max_tokens": 40, "guided": True}


def test_judge_requests_grade_each_judged_answer_with_the_rubric_and_its_guide(plan_and_job):
    _, job = plan_and_job
    rows = [r for m in job["models"] for r in m["rows"]]
    answers = {r["key"]: f"answer to {r['key']}" for r in rows[:-1]}  # the last row failed: no answer
    requests = judge_requests(job, answers)
    judged = [r for r in rows[:-1] if r["benchmark_kind"] == "harm"]
    assert [k for k, _ in requests] == [r["key"] for r in judged]  # MCQ rows are parsed, never judged
    rubric = load_rubric("msb-harm")
    key, body = requests[0]
    text = json.dumps(body["messages"])
    assert answers[key] in text and judged[0]["question"][:40] in text
    assert body["structured_outputs"] == rubric.guided and body["max_tokens"] == 40
    assert judge_sampling(body) == {"temperature": 0.0, "max_tokens": 40, "structured_outputs": rubric.guided}


def test_cpu_sampling_drops_the_seed_only_when_sampling_at_random():
    assert sampling_kwargs({"temperature": 0.7, "seed": 3}, cpu=True) == {"temperature": 0.7}
    assert sampling_kwargs({"temperature": 0.0, "seed": 3}, cpu=True) == {"temperature": 0.0, "seed": 3}
    assert sampling_kwargs({"temperature": 0.7, "seed": 3}, cpu=False) == {"temperature": 0.7, "seed": 3}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"judge": {"url": "http://127.0.0.1:9/v1", "model_name": "x"}}, "one served model"),
        ({"models": [{"name": "api", "endpoint": {"url": "http://127.0.0.1:9/v1", "model_name": "x"}}]}, "open checkpoints"),
    ],
)
def test_what_the_plain_baseline_cannot_run_is_refused(tiny_model, changes, message):
    plan = build_plan(validate_manifest(manifest(str(tiny_model), **changes)))
    with pytest.raises(UserError, match=message):
        baseline_job(plan)


def test_rows_and_ratios_follow_the_definitions():
    t0 = 1000.0
    marks = [["start", 1001.0], ["import", 1011.0], ["load a", 1041.0], ["generate a", 1061.0], ["load judge", 1091.0],
             ["judge", 1121.0], ["written", 1122.0]]  # fmt: skip
    base = baseline_row({"marks": marks, "completion_tokens": 500, "records": 10, "judged": 7, "parse_ok": 6}, t0,
                        125.0, 1.5)  # fmt: skip
    assert (base["answers"], base["verdicts"], base["verdicts_parsed"]) == (10, 7, 6)
    assert base["steady_s"] == 50.0 and base["startup_s"] == 75.0 and base["steady_tok_s"] == 10.0
    assert base["first_record_s"] == 122.0
    assert base["phases"] == {"import": 10.0, "load a": 30.0, "generate a": 20.0, "load judge": 30.0, "judge": 30.0,
                              "written": 1.0}  # fmt: skip
    timeline = {"ray_up": 4.0, "serve_start": 5.0, "first_generation": 40.0, "judge_ready": 60.0, "first_record": 61.0,
                "last_record": 90.0, "end": 95.0}  # fmt: skip
    ours = evalsvc_row({"state": "succeeded"}, {"timeline": timeline},
                       {"records": 10, "tokens": 500, "parse_ok": 9, "errors": 0, "answers": 10, "verdicts": 6,
                        "verdicts_parsed": 5}, 100.0, 62.0, 1.5)  # fmt: skip
    assert (ours["answers"], ours["verdicts"], ours["verdicts_parsed"]) == (10, 6, 5)
    assert ours["steady_s"] == 50.0 and ours["startup_s"] == 50.0 and ours["steady_tok_s"] == 10.0
    result = BenchResult("e2e", {})
    headline(result, result.add(**ours), result.add(**base))
    assert result.ratios == {"wall evalsvc ÷ baseline": 0.8, "time to first record evalsvc ÷ baseline": 62 / 122,
                             "tokens/s excluding start-up evalsvc ÷ baseline": 1.0}  # fmt: skip
    assert all("timeline" not in r and "phases" not in r for r in result.rows)  # nested timings left the table
    assert result.params["timeline"]["judge_ready"] == 60.0
    assert "judge_ready 60.0" in result.notes[0] and "load judge 30.0" in result.notes[1]


def test_the_suite_takes_a_manifest_and_repeats():
    assert suite_options("e2e") == ["manifest", "repeats"]
