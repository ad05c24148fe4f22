"""Rubric grading: the example score against hand-computed values, one grader request per criterion (concurrent,
bounded by judge.concurrency), failed criteria kept and excluded, juries, and the judge stage's rubric records."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow as pa
import pytest

from evalsvc.engines.chat import ChatTarget as JudgeTarget
from evalsvc.judge.core import SINGLE_JUDGE, JudgeSettings, Judging
from evalsvc.judge.criteria import CriterionVerdict, example_score, jury_met, record_fields
from evalsvc.judge.jury import Jury, Vote
from evalsvc.judge.stage import JudgeConfig, JudgeStage
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import build_plan
from evalsvc.specs.rubric import load_rubric
from evalsvc.store.record import RECORD_SCHEMA

SAMPLE = Path(__file__).resolve().parents[2] / "evalsvc" / "benchmarks" / "samples" / "rubric_sample.jsonl"
MET = '{"explanation": "It does.", "criteria_met": true}'
UNMET = '{"explanation": "It does not.", "criteria_met": false}'


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    from evalsvc.engines import chat as client

    real_sleep = asyncio.sleep
    monkeypatch.setattr(client.asyncio, "sleep", lambda _s: real_sleep(0))  # retries without waiting


class ScriptedGrader:
    """A judge that answers each criterion from a script keyed by a phrase of the criterion (or raises)."""

    def __init__(self, script: dict[str, str | Exception], default: str = UNMET):
        self.script, self.default, self.bodies = script, default, []
        self.in_flight = self.most_in_flight = 0

    async def chat(self, body: dict) -> str:
        self.bodies.append(body)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.001)
        self.in_flight -= 1
        text = body["messages"][-1]["content"]
        answer = next((a for phrase, a in self.script.items() if phrase in text), self.default)
        if isinstance(answer, Exception):
            raise answer
        return answer


# --- the score ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("points", "met", "want"), [
    ([5, 3, -4], [True, False, True], (5 - 4) / 8),  # a penalty met: its points subtract
    ([5, 3, -4], [True, True, False], 1.0),  # every positive met, the undesirable behaviour absent
    ([5, 3, -4], [True, None, True], (5 - 4) / 5),  # a failed criterion leaves numerator AND denominator
    ([2, -6], [False, True], -3.0),  # may be negative (the benchmark mean is clipped, not the example)
    ([5, -4], [None, True], None),  # no positive criterion graded: undefined, never 0
    ([5, 3], [None, None], None),
    ([4, 0, 4], [True, True, False], 0.5),
])  # fmt: skip
def test_example_score(points, met, want):
    got = example_score(points, met)
    assert got == pytest.approx(want) if want is not None else got is None


def verdict(points: float, met: bool | None, error: str | None = None) -> CriterionVerdict:
    return CriterionVerdict("00-x", "c", points, [], met, met is not None, None if error else "{}", error)


def test_record_fields_parse_ok_only_when_the_score_is_defined():
    ok = record_fields([verdict(5, True), verdict(3, None), verdict(-2, False)])
    assert (ok["score"], ok["parse_ok"], ok["error"]) == (1.0, True, None) and len(ok["criteria"]) == 3
    unparsed = record_fields([verdict(5, None), verdict(-2, True)])
    assert (unparsed["score"], unparsed["parse_ok"], unparsed["error"]) == (None, False, None)
    down = record_fields([verdict(5, None, "RuntimeError: HTTP 503"), verdict(2, None)])
    assert (down["parse_ok"], down["error"]) == (False, "judge: 1 of 2 criterion calls failed: RuntimeError: HTTP 503")
    assert pa.array(ok["criteria"], RECORD_SCHEMA.field("criteria").type.value_type).null_count == 0


# --- grading one record's criteria -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    m = validate_manifest({
        "name": "rub", "models": [{"name": "m", "source": "evalsvc://tiny"}],
        "benchmarks": [{"name": "hb", "path": str(SAMPLE), "format": "rubric"}],
        "strategies": ["basic", "safety"], "judge": {"url": "http://127.0.0.1:9/v1", "model_name": "judge"},
        "output": {"uri": str(out)},
    })  # fmt: skip
    return build_plan(m)


def row_of(plan, item_id: str, strategy: str = "basic", response: str = "Call 999 now.") -> dict:
    row = next(r for r in plan.rows("m") if r["item_id"] == item_id and r["strategy"] == strategy)
    return {**row, "response": response, "error": None, "prompt_tokens": 10, "completion_tokens": 5,
            "latency_s": 0.1, "finish_reason": "stop"}  # fmt: skip


def judging(graders: dict[str, ScriptedGrader], concurrency: int = 16, aggregate: str = "mean") -> Judging:
    """The judging core over scripted graders: one named SINGLE_JUDGE is a single judge, others a jury."""
    settings = JudgeSettings(temperature=0.0, max_tokens=64, guided=True, concurrency=concurrency)
    targets = {name: JudgeTarget(model_id=f"j{name}" if name != SINGLE_JUDGE else "judge-x", url="http://127.0.0.1:9/v1")
               for name in graders}  # fmt: skip
    target = targets[SINGLE_JUDGE] if list(graders) == [SINGLE_JUDGE] else Jury(tuple(targets.items()), aggregate)
    return Judging(target, settings, clients=dict(graders))


def grade(row, graders: dict[str, ScriptedGrader], aggregate: str = "mean") -> list[CriterionVerdict]:
    async def go():
        return await judging(graders, aggregate=aggregate).grade(load_rubric("rubric-grader"), row, row["response"])

    return asyncio.run(go())


def test_one_request_per_criterion_with_the_conversation_and_polarity(plan):
    row = row_of(plan, "rs-002", strategy="safety")
    judge = ScriptedGrader({"emergency services": MET, "Suggests waiting": UNMET})
    verdicts = grade(row, {SINGLE_JUDGE: judge})
    assert [v.criterion_id for v in verdicts] == [c["criterion_id"] for c in json.loads(row["rubric_json"])["criteria"]]
    assert len(judge.bodies) == 5 and {b["model"] for b in judge.bodies} == {"judge-x"}
    body = judge.bodies[0]
    assert body["structured_outputs"] == {"regex": load_rubric("rubric-grader").guided["regex"]}
    assert (body["temperature"], body["max_tokens"], body["stream"]) == (0.0, 64, False)
    user = body["messages"][-1]["content"]
    assert "[user]\nI'm 58 and" in user and "[assistant]\nI'm sorry" in user and "[user]\nA bit sweaty" in user
    assert "<<<\nCall 999 now.\n>>>" in user and "THE CRITERION (+10 points)" in user
    assert "bound by the principles of medical ethics" not in user  # the strategy's system prompt is not the user's
    negative = next(b["messages"][-1]["content"] for b in judge.bodies if "Suggests waiting" in b["messages"][-1]["content"])
    assert "(-8 points)" in negative and "avoids (it carries negative points)" in negative
    assert [v.met for v in verdicts] == [True, False, False, False, False]
    fields = record_fields(verdicts)
    assert fields["score"] == pytest.approx(10 / 16) and fields["parse_ok"]


def test_criteria_are_graded_concurrently_within_the_judges_concurrency(plan):
    rows = [row_of(plan, f"rs-00{i}") for i in range(1, 9)]
    judge = ScriptedGrader({})
    rubric = load_rubric("rubric-grader")

    async def go():
        core = judging({SINGLE_JUDGE: judge}, concurrency=3)  # one bound for every record of a batch, as in the stage
        return await asyncio.gather(*(core.grade(rubric, r, r["response"]) for r in rows))

    results = asyncio.run(go())
    assert sum(map(len, results)) == len(judge.bodies) == 35
    assert judge.most_in_flight == 3  # kept full, never over


def test_failed_and_unparsable_criteria_are_kept_and_excluded(plan):
    row = row_of(plan, "rs-001")
    judge = ScriptedGrader({"fluids and rest": MET, "warning signs": RuntimeError("HTTP 503"),
                            "paracetamol": "Yes it does", "aspirin": UNMET, "plain, calm": MET})  # fmt: skip
    verdicts = grade(row, {SINGLE_JUDGE: judge})
    by = {v.criterion[:20]: v for v in verdicts}
    failed = next(v for v in verdicts if "warning signs" in v.criterion)
    assert (failed.met, failed.parse_ok, failed.raw) == (None, False, None) and "HTTP 503" in failed.error
    unparsed = next(v for v in verdicts if "paracetamol" in v.criterion)
    assert (unparsed.met, unparsed.parse_ok, unparsed.raw, unparsed.error) == (None, False, "Yes it does", None)
    assert len(judge.bodies) == 5 + 3  # the failed call was retried (4 attempts in all)
    assert record_fields(verdicts)["score"] == pytest.approx((4 + 2) / (4 + 2))  # 5 and 3 points left out
    assert len(by) == 5


def test_jury_votes_per_criterion(plan):
    row = row_of(plan, "rs-003")
    a = ScriptedGrader({"kidney": MET, "over-the-counter adult": MET, "daily dose above": UNMET})
    b = ScriptedGrader({"kidney": MET, "over-the-counter adult": UNMET, "daily dose above": MET,
                        "with food": RuntimeError("down")})  # fmt: skip
    verdicts = grade(row, {"a": a, "b": b}, aggregate="mean")
    met = [v.met for v in verdicts]
    # agree → met; 1-1 tie on a positive → unmet; 1-1 tie on a negative → met; one juror failed (half parsed) → a's vote
    assert met == [True, False, True, False]
    votes = json.loads(verdicts[0].votes)
    assert [v["juror"] for v in votes] == ["a", "b"] and verdicts[0].raw.startswith("[a] {")
    assert {b_["model"] for b_ in a.bodies} == {"ja"} and {b_["model"] for b_ in b.bodies} == {"jb"}


def test_jury_met_needs_half_the_votes():
    def v(score, ok=True):
        return Vote("j", score, None, ok)

    assert jury_met([v(1.0), v(None, False), v(None, False)], 5) is None
    assert jury_met([v(1.0), v(0.0), v(None, False)], 5) is False
    assert jury_met([v(1.0), v(0.0), v(None, False)], -5) is True
    assert jury_met([v(1.0), v(1.0), v(0.0)], 5) is True


# --- the judge stage's rubric records ----------------------------------------------------------------------------


def stage(target) -> JudgeStage:
    cfg = JudgeConfig(run_id="r1", target=target, rubrics={"rubric": "rubric-grader"}, max_tokens=64, concurrency=4)
    return JudgeStage(cfg)


def test_stage_writes_one_record_with_its_criteria(plan):
    s = stage(JudgeTarget(model_id="judge", url="http://127.0.0.1:9/v1", label="http://127.0.0.1:9/v1#judge"))
    s.client = ScriptedGrader({"Gives exactly two": MET, "for the remaining 5 days": MET})
    rec = asyncio.run(s._record(row_of(plan, "rs-004", response="- Take amoxicillin for 5 days\n- See your GP")))
    assert (rec["benchmark_kind"], rec["rubric_id"], rec["rubric_version"]) == ("rubric", "rubric-grader", "1.0.0")
    assert rec["score"] == pytest.approx(9 / 13) and rec["parse_ok"] and rec["error"] is None
    assert rec["example_tags"] == ["theme:health_data_tasks"] and rec["judge_raw"] is None
    assert [c["met"] for c in rec["criteria"]] == [True, True, False, False]
    table = pa.Table.from_pylist([rec], schema=RECORD_SCHEMA)
    assert table["criteria"][0][0]["tags"].as_py() == ["level:example", "axis:instruction_following"]


def test_stage_keeps_a_failed_generation_without_grading(plan):
    s = stage(JudgeTarget(model_id="judge", url="http://127.0.0.1:9/v1"))
    s.client = ScriptedGrader({})
    row = row_of(plan, "rs-005") | {"response": None, "error": "generation: engine died"}
    rec = asyncio.run(s._record(row))
    assert (rec["error"], rec["criteria"], rec["parse_ok"]) == ("generation: engine died", None, False)
    assert rec["example_tags"] == ["theme:hedging"] and s.client.bodies == []


def test_stage_reuses_a_cached_rubric_judgement(plan):
    s = stage(JudgeTarget(model_id="judge", url="http://127.0.0.1:9/v1"))
    s.client = ScriptedGrader({})
    cached = [{"criterion_id": "00-a", "criterion": "x", "points": 5.0, "tags": [], "met": True, "parse_ok": True,
               "raw": MET, "error": None, "votes": None}]  # fmt: skip
    row = row_of(plan, "rs-006") | {"reused_judgement": True, "cached_criteria": json.dumps(cached),
                                    "cached_score": 1.0, "cached_parse_ok": True}  # fmt: skip
    row |= {f"cached_{k}": None for k in ("judge_model", "rubric_id", "rubric_version", "judge_raw", "label",
                                          "judge_votes")}  # fmt: skip
    rec = asyncio.run(s._record(row))
    assert rec["criteria"] == cached and rec["score"] == 1.0 and s.client.bodies == []


def test_stage_grades_with_a_jury(plan):
    a, b = JudgeTarget("ja", url="http://127.0.0.1:9/v1", label="A"), JudgeTarget("jb", url="http://127.0.0.1:9/v1", label="B")
    s = stage(Jury((("a", a), ("b", b)), "majority"))
    s.jurors = {"a": ScriptedGrader({}, default=MET), "b": ScriptedGrader({}, default=MET)}
    rec = asyncio.run(s._record(row_of(plan, "rs-007")))
    assert rec["judge_model"] == "jury:majority[a=A,b=B]"
    assert [c["met"] for c in rec["criteria"]] == [True] * 4 and rec["score"] == pytest.approx((4 + 3 + 2 - 4) / 9)
    assert all(json.loads(c["votes"])[1]["juror"] == "b" for c in rec["criteria"])
