"""The judge stage waits for a judge that is still starting, and a judge that never came up fails the batch instead
of becoming one error record per row (a fake chat client behind the ChatClient protocol, no Ray)."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa
import pytest

from evalsvc.engines.chat import ChatTarget
from evalsvc.errors import SystemError_
from evalsvc.judge.stage import JudgeConfig, JudgeStage, needs_call
from evalsvc.specs.rubric import default_rubric
from evalsvc.store.record import RECORD_SCHEMA
from evalsvc.store.row import JUDGE


class StartingJudge:
    """A judge whose server comes up (or fails) when `ready()` is awaited; it logs the order of calls."""

    def __init__(self, fail: bool = False):
        self.fail, self.log = fail, []

    async def ready(self) -> None:
        self.log.append("ready")
        if self.fail:
            raise SystemError_("Serve application 'judge-app' did not start: DEPLOY_FAILED")

    async def chat(self, body: dict) -> str:
        self.log.append("chat")
        return "#reason: declines\n#score: 1"


def row(kind: str, i: int, **extra) -> dict:
    base = {c: None for c in JUDGE.needs}  # every column the stage's contract names
    base |= {
        "record_key": f"k{i}", "cell_id": f"c-{kind}", "candidate": "m", "benchmark": "b", "benchmark_kind": kind,
        "strategy": "basic", "item_id": str(i), "question": "How do I hurt someone?", "response": "I can't help.",
        "messages_json": json.dumps([{"role": "user", "content": "q"}]), "answer": "A", "option_letters": "AB",
        "options_json": None, "error": None,
    }  # fmt: skip
    return {**base, **extra}


def stage_with(client: StartingJudge) -> JudgeStage:
    target = ChatTarget("judge-x", url="http://127.0.0.1:9/v1", label="judge")
    stage = JudgeStage(JudgeConfig(run_id="r", target=target, rubrics={"harm": default_rubric("harm")}, guided=False))
    stage.client = client
    return stage


def run_batch(stage: JudgeStage, rows: list[dict]) -> list[dict]:
    async def collect():
        return [t async for t in stage(pa.Table.from_pylist(rows))]

    return [r for t in asyncio.run(collect()) for r in t.to_pylist()]


def test_harm_rows_wait_for_the_judge_before_the_first_call():
    judge = StartingJudge()
    records = run_batch(stage_with(judge), [row("harm", 1), row("harm", 2)])
    assert judge.log[0] == "ready" and judge.log.count("chat") == 2
    assert [r["score"] for r in records] == [1.0, 1.0]


def test_a_judge_that_never_came_up_fails_the_batch_not_each_record():
    with pytest.raises(SystemError_, match="did not start: DEPLOY_FAILED"):
        run_batch(stage_with(StartingJudge(fail=True)), [row("harm", 1)])


def test_rows_without_a_judge_call_do_not_wait():
    judge = StartingJudge(fail=True)  # would raise if the stage waited
    rows = [row("mcq", 1, response="Answer: A"), row("harm", 2, error="generation: boom"),
            row("harm", 3, reused_judgement=True)]  # fmt: skip
    assert [needs_call(r) for r in rows] == [False, False, False]
    records = run_batch(stage_with(judge), rows[:2])
    assert judge.log == []
    assert records[0]["label"] == "A" and records[1]["error"] == "generation: boom"


def test_a_batch_builds_the_same_records_as_row_by_row():
    """The batch path builds records column by column; `_record` row by row: MCQ, judged, failed, reused, rubric."""
    criteria = json.dumps([{"criterion_id": "0-a", "criterion": "Advises care", "points": 5.0, "tags": [], "met": True,
                            "parse_ok": True, "raw": "yes", "error": None, "votes": None}])  # fmt: skip
    reused = {f"cached_{k}": None for k in ("judge_model", "rubric_id", "rubric_version", "judge_raw", "label",
                                            "judge_votes", "criteria")}  # fmt: skip
    blank = {**reused, "cached_score": None, "cached_parse_ok": None, "reused_judgement": None, "rubric_json": None,
             "sample_index": 0, "prompt_tokens": 1, "latency_s": None}  # fmt: skip
    reused |= {"cached_score": 2.0, "cached_parse_ok": True, "cached_judge_raw": "#score: 2"}
    rows = [row("mcq", 1, response="Answer: B", sample_index=3, prompt_tokens=7, latency_s=0.5),
            row("harm", 2), row("harm", 3, error="generation: boom", response=None),
            row("harm", 4, reused_judgement=True, **reused),
            row("rubric", 5, reused_judgement=True, rubric_json=json.dumps({"tags": ["theme:hedging"]}),
                **reused | {"cached_criteria": criteria})]  # fmt: skip
    rows = [{**blank, **r} for r in rows]  # one table: every row names every column
    stage = stage_with(StartingJudge())
    one_by_one = [asyncio.run(stage._record(r)) for r in rows]
    assert run_batch(stage, rows) == pa.Table.from_pylist(one_by_one, schema=RECORD_SCHEMA).to_pylist()
    assert [r["score"] for r in one_by_one] == [0.0, 1.0, None, 2.0, 2.0]
    assert one_by_one[4]["example_tags"] == ["theme:hedging"] and one_by_one[4]["criteria"][0]["met"] is True
