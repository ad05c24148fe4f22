"""The report's judge sections: jury agreement (κ table and the records jurors disagree on) and calibration
(agreement with reference labels, confusion matrices, bias). Record text is clipped and HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

import pyarrow.dataset as ds

from evalsvc.analysis.agreement import VOTE_COLUMNS, agreement_section, collect_votes
from evalsvc.render.judge_format import Section, agreement_sections, calibration_sections
from evalsvc.render.sections import _clip

SHOWN_CASES = 50  # disagreement cases shown in the report (all are counted)
QUESTION_CHARS, RESPONSE_CHARS = 300, 400
CASE_HEADER = ["model", "benchmark", "strategy", "item", "question", "response", "votes"]


@dataclass
class JudgeReport:
    sections: dict = field(default_factory=dict)  # "agreement" / "calibration" as in summary.json
    cases: list[dict] = field(default_factory=list)  # disagreement records with their question and response


def read_judge_report(src, dataset: ds.Dataset) -> JudgeReport:
    """Agreement, disagreement cases (with text) and calibration of a run, read once for the report."""
    from evalsvc.analysis.calibration import calibration_section, read_calibration_table
    from evalsvc.store.read import iter_cells

    data = collect_votes(iter_cells(dataset, VOTE_COLUMNS))
    out = JudgeReport()
    agreement = agreement_section(data)
    if agreement is not None:
        out.sections["agreement"] = agreement
        out.cases = _with_text(dataset, data.disagreements[:SHOWN_CASES])
    table = read_calibration_table(src)
    if table is not None and table.num_rows:
        out.sections["calibration"] = calibration_section(table)
    return out


def _with_text(dataset: ds.Dataset, cases: list[dict]) -> list[dict]:
    from evalsvc.store.read import cell_filter

    by_cell: dict[tuple, list[dict]] = {}
    for c in cases:
        by_cell.setdefault((c["model"], c["benchmark"], c["strategy"]), []).append(c)
    for cell, group in by_cell.items():
        ids = sorted({c["item_id"] for c in group})
        where = cell_filter(cell) & ds.field("item_id").isin(ids)
        table = dataset.to_table(columns=["item_id", "sample_index", "messages", "response"], filter=where)
        texts = {(r["item_id"], r["sample_index"]): r for r in table.to_pylist()}
        for c in group:
            found = texts.get((c["item_id"], c["sample_index"]), {})
            c["question"], c["response"] = _question(found.get("messages")), found.get("response")
    return cases


def _question(messages: str | None) -> str | None:
    """The last user turn of the candidate's prompt (the request, after any strategy preamble)."""
    try:
        users = [m.get("content", "") for m in json.loads(messages or "[]") if m.get("role") == "user"]
    except (ValueError, TypeError, AttributeError):
        return messages
    return users[-1] if users else None


def judge_nav(report: JudgeReport) -> str:
    links = [("judge-agreement", "Judge agreement", "agreement"), ("judge-calibration", "Calibration", "calibration")]
    return "".join(f'<a href="#{a}">{t}</a>' for a, t, key in links if key in report.sections)


def judge_html(report: JudgeReport, table: Callable[..., str]) -> str:
    """The sections for the report body (empty when the run has neither a jury nor a calibration slice)."""
    out = []
    if "agreement" in report.sections:
        out.append(_agreement_html(report, table))
    if "calibration" in report.sections:
        out.append(_calibration_html(report.sections["calibration"], table))
    return "".join(out)


def _agreement_html(report: JudgeReport, table: Callable[..., str]) -> str:
    sec = report.sections["agreement"]
    lead = ("Pairwise agreement of the jurors on the records both parsed: exact agreement and Cohen's κ "
            "(quadratic-weighted on 1-5 scores, unweighted on behaviour labels) with 95% bootstrap CIs. "
            "'overall' pools every kind's verdict (exact agreement only).")  # fmt: skip
    parts = [f'<section id="judge-agreement"><h2>Judge agreement</h2><p class="lead">{escape(lead)}</p>']
    parts += [_titled(s, table, "agreement-table") for s in agreement_sections(sec)]
    n, shown = sec["n_disagreements"], len(report.cases)
    parts.append(f'<h3 style="margin:14px 0 6px;font-size:14px">Disagreements: {n} records '
                 f'(scores 2+ apart or different labels){f", first {shown} shown" if n > shown else ""}</h3>')  # fmt: skip
    if report.cases:
        parts.append(table(CASE_HEADER, [_case_row(c) for c in report.cases], table_id="disagreement-table"))
    else:
        parts.append('<p class="empty">The jurors never disagreed by that much.</p>')
    return "".join(parts) + "</section>"


def _case_row(c: dict) -> list[str]:
    votes = "; ".join(_vote_text(v) for v in c["votes"])
    return [c["model"], c["benchmark"], c["strategy"], f"{c['item_id']} #{c['sample_index']}",
            _clip(c.get("question") or "", QUESTION_CHARS), _clip(c.get("response") or "", RESPONSE_CHARS), votes]  # fmt: skip


def _vote_text(v) -> str:
    if not v.parse_ok:
        return f"{v.juror}: {'error' if v.error else 'not parsed'}"
    parts = [v.label] if v.label else []
    parts += [f"{v.score:g}"] if v.score is not None else []
    return f"{v.juror}: {' '.join(parts)}"


def _calibration_html(sec: dict, table: Callable[..., str]) -> str:
    lead = ("The judge(s) on a labelled slice (reference labels from people): agreement, κ, and bias = judge mean "
            "− reference mean with a 95% adjusted Wald CI (for behaviour labels: the unsafe_actionable rate, in "
            "percentage points). Confusion matrices: rows are the reference, columns what the judge said.")  # fmt: skip
    sections = calibration_sections(sec)
    parts = [f'<section id="judge-calibration"><h2>Judge calibration</h2><p class="lead">{escape(lead)}</p>']
    parts.append(_titled(sections[0], table, "calibration-table"))
    cards = [f'<div class="card">{_titled(s, table)}</div>' for s in sections[1:]]
    return "".join(parts) + f'<div class="grid" style="margin-top:12px">{"".join(cards)}</div></section>'


def _titled(section: Section, table: Callable[..., str], table_id: str = "") -> str:
    title, header, body = section
    return f'<h3 style="margin:14px 0 6px;font-size:14px">{escape(title)}</h3>' + table(header, body, table_id=table_id)
