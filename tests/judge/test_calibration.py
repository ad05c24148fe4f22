"""The calibration slice: loading and checking the labelled file (errors name judge.calibration.<field>), scoring it
with fake judges behind the ChatClient protocol, and the agreement metrics (hand-computed values). No Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalsvc.analysis.calibration import calibration_section, label_agreement, score_agreement
from evalsvc.engines.chat import ChatTarget
from evalsvc.errors import UserError
from evalsvc.judge import core
from evalsvc.judge.calibration import CalibrationItem, load_calibration, run_calibration
from evalsvc.judge.core import JudgeSettings
from evalsvc.judge.jury import JURY_VOTER, Jury
from evalsvc.manifest.judging import Calibration
from evalsvc.render.judge_format import calibration_sections
from evalsvc.specs.rubric import load_rubric

EXAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "calibration" / "msb-harm-sample.jsonl"


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --- metrics ---------------------------------------------------------------------------------------------------


def test_score_agreement_by_hand():
    # reference 1..5, judge 1,2,4,4,3: exact 3/5, within-1 4/5 (only 5→3 is off by 2), bias (0+0+1+0-2)/5 = -0.2,
    # quadratic κ = 12/17 (worked out in test_agreement.py).
    m = score_agreement([1, 2, 3, 4, 5], [1, 2, 4, 4, 3])
    assert m["exact"] == pytest.approx(0.6) and m["within1"] == pytest.approx(0.8)
    assert m["kappa"] == pytest.approx(12 / 17) and m["kappa_weights"] == "quadratic"
    assert m["mean_judge"] == pytest.approx(2.8) and m["mean_reference"] == pytest.approx(3.0)
    assert m["bias"] == pytest.approx(-0.2) and m["bias_lo"] <= -0.2 <= m["bias_hi"]
    assert m["confusion"] == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0]]


def test_jury_mean_between_scores_rounds_towards_harm_except_in_the_bias():
    m = score_agreement([3, 2], [2.5, 2.0])  # 2.5 counts as 3 for agreement; the bias keeps -0.25
    assert m["exact"] == 1.0 and m["bias"] == pytest.approx(-0.25)


def test_label_agreement_by_hand():
    # p_o = 0.5; reference {refuse .5, cautious .25, unsafe .25}, judge {refuse .25, redirect .25, unsafe .5}:
    # p_e = .5·.25 + .25·.5 = .25, κ = (.5 - .25) / .75 = 1/3; unsafe rate .5 - .25 = +0.25
    ref = ["refuse", "refuse", "unsafe_actionable", "cautious_answer"]
    jud = ["refuse", "safe_redirect", "unsafe_actionable", "unsafe_actionable"]
    m = label_agreement(ref, jud)
    assert m["exact"] == 0.5 and m["within1"] is None
    assert m["kappa"] == pytest.approx(1 / 3) and m["kappa_weights"] is None
    assert m["bias"] == pytest.approx(0.25) and m["bias_on"] == "unsafe_actionable rate"
    assert m["confusion"][0] == [1, 1, 0, 0]  # reference refuse: judged refuse once, safe_redirect once


def test_nothing_parsed_gives_counts_and_no_metrics():
    m = score_agreement([], [])
    assert m["exact"] is None and m["kappa"] is None and m["bias"] is None
    assert m["confusion"] == [[0] * 5 for _ in range(5)]


# --- loading -----------------------------------------------------------------------------------------------------


def test_shipped_example_covers_every_score():
    items = load_calibration(Calibration(path=str(EXAMPLE), kind="harm", item_id="id"))
    assert 20 <= len(items) <= 30
    assert sorted({i.reference for i in items}) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert len({i.item_id for i in items}) == len(items)


def test_csv_and_parquet_with_mapped_columns(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("q,a,human\nHow?,No.,1\nWhy?,Because.,5\n")
    items = load_calibration(Calibration(path=str(csv), kind="harm", question="q", response="a", label="human"))
    assert [(i.item_id, i.question, i.reference) for i in items] == [("cal-00000", "How?", 1.0), ("cal-00001", "Why?", 5.0)]
    pq.write_table(pa.table({"question": ["q1"], "response": ["r1"], "label": ["Unsafe Actionable"]}), tmp_path / "p.parquet")
    [item] = load_calibration(Calibration(path=str(tmp_path / "p.parquet"), kind="high_risk"))
    assert item.reference == "unsafe_actionable"


@pytest.mark.parametrize(
    "rows, fields, expect",
    [
        ([{"question": "q", "answer": "r", "label": 1}], {}, "judge.calibration.response: "),
        ([{"question": "q", "response": "r", "score": 1}], {}, "set judge.calibration.label to the column"),
        ([{"question": "q", "response": "r", "label": 7}], {}, "judge.calibration.label: "),
        ([{"question": "q", "response": "r", "label": 2.5}], {}, "write a whole number 1 (safe) to 5 (harmful)"),
        ([{"question": "q", "response": "r", "label": "refuse"}], {"kind": "harm"}, "judge.calibration.label"),
        ([{"question": "", "response": "r", "label": 1}], {}, "judge.calibration.question: "),
        ([{"q": "x", "response": "r", "label": 1, "id": "a"}] * 1, {"item_id": "key"}, "judge.calibration.question"),
        ([{"question": "q", "response": "r", "label": 1, "id": "x"}] * 2, {"item_id": "id"}, "duplicate id 'x'"),
        ([], {}, "has no rows"),
    ],
)
def test_bad_files_name_the_field_and_the_fix(tmp_path, rows, fields, expect):
    path = write_jsonl(tmp_path / "c.jsonl", rows)
    with pytest.raises(UserError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        load_calibration(Calibration(path=path, **{"kind": "harm", **fields}))


def test_unreadable_files_point_at_the_path(tmp_path):
    with pytest.raises(UserError, match=r"^judge\.calibration\.path: .*no such file"):
        load_calibration(Calibration(path=str(tmp_path / "missing.jsonl"), kind="harm"))
    (tmp_path / "bad.jsonl").write_text('{"question": "q"\n')
    with pytest.raises(UserError, match=r"^judge\.calibration\.path: .* line 1: not valid JSON"):
        load_calibration(Calibration(path=str(tmp_path / "bad.jsonl"), kind="harm"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(UserError, match=r"^judge\.calibration\.path: .*use \.jsonl, \.csv or \.parquet"):
        load_calibration(Calibration(path=str(tmp_path / "x.txt"), kind="harm"))


# --- scoring with fake judges ---------------------------------------------------------------------------------------


class ScriptedJudge:
    """Answers '#score: N' with N from a per-question script; behind the ChatClient protocol."""

    def __init__(self, scores: dict[str, int | None]):
        self.scores = scores

    async def chat(self, body: dict) -> str:
        question = next(q for q in self.scores if q in body["messages"][-1]["content"])
        n = self.scores[question]
        return f"#reason: ok\n#score: {n}" if n is not None else "I cannot grade this."


def test_run_calibration_scores_every_juror_and_the_jury(monkeypatch):
    items = [CalibrationItem(f"i{k}", f"question {k}?", "answer", float(ref), {}) for k, ref in enumerate([1, 3, 5])]
    scripts = {"a": {"question 0?": 1, "question 1?": 3, "question 2?": 5},
               "b": {"question 0?": 2, "question 1?": 5, "question 2?": None}}  # fmt: skip
    monkeypatch.setattr(core, "make_client", lambda t: ScriptedJudge(scripts[t.model_id]))
    jury = Jury((("a", ChatTarget("a", label="src-a")), ("b", ChatTarget("b", label="src-b"))), "mean")
    table = run_calibration(items, "harm", jury, load_rubric("msb-harm"), JudgeSettings(), run_id="r1")
    assert table.num_rows == 3 * 3  # 3 items × (2 jurors + the jury)
    section = calibration_section(table)
    assert section["n_items"] == 3 and section["kind"] == "harm" and section["rubric_id"] == "msb-harm"
    by = {v["juror"]: v for v in section["jurors"]}
    assert list(by) == ["a", "b", JURY_VOTER]
    assert (by["a"]["n"], by["a"]["n_parsed"], by["a"]["exact"], by["a"]["bias"]) == (3, 3, 1.0, 0.0)
    assert (by["b"]["n_parsed"], by["b"]["exact"], by["b"]["within1"]) == (2, 0.0, 0.5)
    # jury: 1.5 (→2), 4.0, 5 (b unparsed: a alone is half the jury) against 1, 3, 5
    assert by[JURY_VOTER]["n_parsed"] == 3 and by[JURY_VOTER]["exact"] == pytest.approx(1 / 3)
    assert by[JURY_VOTER]["bias"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert by[JURY_VOTER]["judge_model"] == jury.label
    tables = calibration_sections(section)
    assert len(tables) == 1 + 3  # the agreement table and a confusion matrix per voter
    assert tables[0][2][0][:3] == ["a", "3", "3"]
