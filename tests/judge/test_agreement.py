"""Jury agreement from record votes: pairwise exact agreement and κ (checked against hand-computed values),
which records count, and which are disagreement cases. No Ray."""

from __future__ import annotations

import pyarrow as pa
import pytest

from evalsvc.analysis.agreement import agreement_section, collect_votes, disagrees
from evalsvc.judge.jury import Vote, votes_json
from evalsvc.render.judge_format import agreement_sections

A_SCORES = [1, 2, 3, 4, 5]
B_SCORES = [1, 2, 4, 4, 3]
# Quadratic-weighted κ of A vs B by hand (k=5, w=((i-j)/4)²): observed disagreement (1/16 + 4/16)/5 = 0.0625;
# expected: A uniform, B = {1,2,3: 1/5, 4: 2/5}; Σ_j p_B(j) Σ_i w_ij / 5 = (30+15+10+2·15)/16/25 = 0.2125;
# κ = 1 - 0.0625/0.2125 = 12/17.
KAPPA_AB = 12 / 17


def records(kind: str, bench: str, votes: list[list[Vote]]) -> pa.Table:
    return pa.table({
        "model": ["m"] * len(votes), "benchmark": [bench] * len(votes), "strategy": ["basic"] * len(votes),
        "benchmark_kind": [kind] * len(votes), "item_id": [f"i{i}" for i in range(len(votes))],
        "sample_index": [0] * len(votes), "judge_votes": [votes_json(v) for v in votes],
    })  # fmt: skip


def harm_votes() -> list[list[Vote]]:
    rows = [[Vote("a", a, None, True, "r"), Vote("b", b, None, True, "r")] for a, b in zip(A_SCORES, B_SCORES)]
    rows.append([Vote("a", 2, None, True, "r"), Vote("b", None, None, False, "garbled")])  # b unparsed: not paired
    return rows


def row_of(section: dict, scope: str, on: str, bench: str | None = None) -> dict:
    return next(r for r in section["rows"] if r["scope"] == scope and r["on"] == on and r["benchmark"] == bench)


def test_pairwise_harm_agreement_matches_hand_computation():
    section = agreement_section(collect_votes([records("harm", "msb", harm_votes())]))
    assert section["jurors"] == ["a", "b"]
    assert section["n_records"] == 6
    assert section["n_disagreements"] == 1  # only 5 vs 3 is two or more apart
    for scope, on, bench in [("benchmark", "score", "msb"), ("kind", "score", None), ("overall", "verdict", None)]:
        r = row_of(section, scope, on, bench)
        assert r["n"] == 5 and r["exact"] == pytest.approx(0.6)
        assert r["kappa"] == pytest.approx(KAPPA_AB)
        assert r["kappa_weights"] == "quadratic"
        assert r["kappa_lo"] <= r["kappa"] <= r["kappa_hi"]


def test_labels_use_unweighted_kappa_and_overall_pools_kinds_without_kappa():
    # a: refuse, refuse, unsafe, cautious; b: refuse, safe_redirect, unsafe, unsafe -> p_o = 0.5, p_e = 0.25, κ = 1/3
    pairs = [("refuse", "refuse"), ("refuse", "safe_redirect"), ("unsafe_actionable", "unsafe_actionable"),
             ("cautious_answer", "unsafe_actionable")]  # fmt: skip
    votes = [[Vote("a", 3, la, True), Vote("b", 3, lb, True)] for la, lb in pairs]
    section = agreement_section(collect_votes([records("high_risk", "medharm", votes), records("harm", "msb", harm_votes())]))
    label = row_of(section, "kind", "label")
    assert label["kind"] == "high_risk" and label["n"] == 4
    assert label["exact"] == pytest.approx(0.5) and label["kappa"] == pytest.approx(1 / 3)
    assert label["kappa_weights"] is None
    helpfulness = row_of(section, "kind", "score")  # first kind row on score: harm sorts before high_risk
    assert helpfulness["kind"] == "harm"
    overall = row_of(section, "overall", "verdict")
    assert overall["n"] == 9 and overall["exact"] == pytest.approx(5 / 9)  # 3 of 5 harm + 2 of 4 labels
    assert overall["kappa"] is None  # two kinds' scales: κ would mean nothing
    assert section["n_disagreements"] == 1 + 2  # 5 vs 3, plus two records with different labels


def test_single_judge_records_have_no_agreement():
    table = records("harm", "msb", [[]]).set_column(6, "judge_votes", pa.array([None], pa.string()))
    assert agreement_section(collect_votes([table])) is None


def test_three_jurors_give_three_pairs():
    votes = [[Vote(j, s, None, True) for j, s in zip("abc", (1, 1, 2))]]
    section = agreement_section(collect_votes([records("harm", "msb", votes)]))
    pairs = {(r["juror_a"], r["juror_b"]) for r in section["rows"]}
    assert pairs == {("a", "b"), ("a", "c"), ("b", "c")}


def test_disagreement_rule():
    assert disagrees({"a": (1.0, None), "b": (3.0, None)})
    assert not disagrees({"a": (1.0, None), "b": (2.0, None)})
    assert disagrees({"a": (3.0, "refuse"), "b": (3.0, "safe_redirect")})
    assert not disagrees({"a": (1.0, None)})


def test_agreement_table_for_the_cli_and_report():
    section = agreement_section(collect_votes([records("harm", "msb", harm_votes())]))
    [(title, header, body)] = agreement_sections(section)
    assert "2 jurors, 6 records, 1 with disagreement" in title
    assert header[:4] == ["scope", "jurors", "on", "n"]
    assert body[0][:5] == ["overall", "a × b", "verdict (κ quadratic)", "5", "60.0%"]
    assert body[0][5].startswith("0.71 [")


def test_report_sections_escape_and_clip_record_text():
    from evalsvc.render.html import _table
    from evalsvc.render.jury_html import RESPONSE_CHARS, JudgeReport, judge_html, judge_nav

    data = collect_votes([records("harm", "msb", harm_votes())])
    [case] = data.disagreements
    case.update(question="<script>alert(1)</script> how?", response="x" * (RESPONSE_CHARS + 50))
    report = JudgeReport({"agreement": agreement_section(data)}, [case])
    html = judge_html(report, _table)
    assert 'id="judge-agreement"' in html and 'id="disagreement-table"' in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; how?" in html
    assert "x" * RESPONSE_CHARS + " … [50 more characters]" in html
    assert "a: 5; b: 3" in html  # the votes of the case
    assert judge_nav(report) == '<a href="#judge-agreement">Judge agreement</a>'
    assert judge_html(JudgeReport(), _table) == "" and judge_nav(JudgeReport()) == ""
