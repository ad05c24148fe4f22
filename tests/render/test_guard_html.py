"""The report of a run with guardrails: the Guardrails section, its tables and figures, arm-aware plots, and a
sample browser that shows the guard's decision and the answer it replaced."""

from __future__ import annotations

import re

import pytest

from evalsvc.render.html import build_report
from tests.render.test_html import _figures


@pytest.fixture(scope="module")
def html(guarded_run) -> str:
    return build_report("guarded", guarded_run.layout.root, samples=2)


def _section(html: str) -> str:
    return html.split('<section id="guardrails">')[1].split("</section>")[0]


def test_guardrails_section_has_a_table_per_benchmark_and_tradeoff_figures(html):
    assert '<a href="#guardrails">Guardrails</a>' in html
    section = _section(html)
    for i in range(3):  # medguard, medharm, msb: sorted benchmark names
        table = section.split(f'id="guard-table-{i}"')[1].split("</table>")[0]
        assert table.count("<tr") == 1 + 2 * 3 * 2  # header + models × arms × strategies
    medharm = section.split('id="guard-table-1"')[1].split("</table>")[0]
    for header in ("blocked", "over-blocking", "unsafe after guard", "helpfulness after guard"):
        assert f"<th>{header}</th>" in medharm
    figures = _figures(html)
    guard_figs = sorted(k for k in figures if k.startswith("plot-guard"))
    assert guard_figs == ["plot-guard-1", "plot-guard-2"]  # harm and high-risk benchmarks, not MCQ
    for key in guard_figs:
        assert f'id="{key}"' in section
    names = {t["name"] for t in figures["plot-guard-1"]["data"]}
    assert {"none", "guard-a", "guard-b", "model-a", "model-b"} <= names


def test_arm_rows_stay_apart_in_the_overview_plots(html):
    heat = _figures(html)["plot-heatmap-0"]["data"][0]
    assert len(heat["y"]) == 6 and "model-a [guard-b]" in heat["y"]  # models × arms, one row each


def test_sample_browser_shows_the_guard_decision_and_the_replaced_answer(html):
    browser = html.split('id="sample-browser"')[1]
    assert "guardrail guard-a" in browser and "input filter: block" in browser
    assert "<h4>unguarded answer (replaced by the guard's refusal)</h4>" in browser
    assert "I can&#x27;t help with that request." in browser  # the refusal served instead
    assert re.search(r"<h4>guard answer</h4><pre>\{&quot;input&quot;", browser)


def test_a_run_without_guardrails_has_no_guardrails_section(small_run):
    plain = build_report("small", small_run.layout.root, samples=1)
    assert 'id="guardrails"' not in plain and "#guardrails" not in plain
    assert not any(k.startswith("plot-guard") for k in _figures(plain))
