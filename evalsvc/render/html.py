"""The self-contained HTML report: summary, plots, paired tests, data quality, samples and redacted run metadata.

Every value from records is HTML-escaped; plotly.js is embedded inline so the file opens offline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from string import Template

import pyarrow as pa

from evalsvc.analysis.compare import compare_run
from evalsvc.analysis.health_read import health_section
from evalsvc.analysis.summary import DEFAULT_THRESHOLD, split_cells, summarize_cells
from evalsvc.redact import redact
from evalsvc.render import figures
from evalsvc.render import format as fmt
from evalsvc.render.guard_html import guard_figures, guard_nav, guard_section
from evalsvc.render.health_format import flagged_kinds
from evalsvc.render.health_html import health_html
from evalsvc.render.jury_html import (
    JudgeReport,
    judge_html,
    judge_nav,
    read_judge_report,
)
from evalsvc.render.sections import metadata_html, samples_html
from evalsvc.store.read import (
    open_run,
    read_run_json,
    read_samples,
    read_small,
    records_dataset,
)


@dataclass
class ReportData:
    run_id: str
    summary: pa.Table
    comparisons: list = field(default_factory=list)
    samples: dict = field(default_factory=dict)
    run_json: dict | None = None
    threshold: float = DEFAULT_THRESHOLD
    judge: JudgeReport = field(default_factory=JudgeReport)  # jury agreement and calibration, when the run has them
    health: list | None = None  # summary.json's judge_health entries (None: nothing was judged)


def build_report(
    run: str, root: str | None, *, baseline=None, samples: int = 3, threshold: float = DEFAULT_THRESHOLD, conn=None
) -> str:
    """Read a run (local or s3://) and render its report as one HTML string."""
    src = open_run(run, root, conn)
    dataset = records_dataset(src)
    small = read_small(dataset)
    summary = summarize_cells(split_cells(small), threshold=threshold)
    comps = compare_run(small, baseline) if summary.num_rows else []
    data = ReportData(
        run_id=src.layout.run_id,
        summary=summary,
        comparisons=comps,
        samples=read_samples(dataset, samples, small) if samples else {},
        run_json=read_run_json(src),
        threshold=threshold,
        judge=read_judge_report(src, dataset),
        health=health_section(src),
    )
    return render(data)


def render(data: ReportData) -> str:
    from plotly.offline import get_plotlyjs

    rows = data.summary.to_pylist()
    benchmarks = sorted({r["benchmark"] for r in rows})
    figs: dict[str, object] = {}
    for i, bench in enumerate(benchmarks):
        figs[f"plot-heatmap-{i}"] = figures.heatmap(rows, bench)
        bars = figures.category_bars(rows, bench)
        if bars is not None:
            figs[f"plot-category-{i}"] = bars
    if rows:
        figs["plot-quality"] = figures.quality_bars(rows, data.threshold)
    figs.update(guard_figures(rows))  # none without guardrails
    template = Template(resources.files("evalsvc.render").joinpath("template.html").read_text(encoding="utf-8"))
    return template.substitute(
        version=escape(_version()),
        judge_health=health_html(data.health, _table),
        run_id=escape(data.run_id),
        subtitle=escape(_subtitle(redact(data.run_json) if data.run_json else None)),
        header_stats=_header_stats(rows),
        threshold=f"{data.threshold:.0%}",
        plotlyjs=get_plotlyjs(),
        heatmaps=_plot_divs([k for k in figs if k.startswith("plot-heatmap")]) or _empty("No records yet."),
        summary_table=_summary_table(data.summary) + _cost_table(data.summary),
        category_plots=_plot_divs([k for k in figs if k.startswith("plot-category")])
        or _empty("No category fields in these records."),
        guard_nav=guard_nav(rows),
        guard_section=guard_section(rows, _table, [k for k in figs if k.startswith("plot-guard")]),
        paired_lead=escape(_paired_lead(data.comparisons)),
        paired_table=_paired_table(data.comparisons, flagged_kinds(data.health)),
        flag_table=_flag_table(rows),
        samples=samples_html(data.samples),
        judge_nav=judge_nav(data.judge),
        judge_sections=judge_html(data.judge, _table),
        metadata=metadata_html(data.run_json),
        figures=_figure_json(figs),
    )


def _version() -> str:
    from evalsvc import __version__

    return __version__


def _figure_json(figs: dict) -> str:
    import plotly.io as pio

    text = "{" + ",".join(f"{json.dumps(k)}:{pio.to_json(f, validate=False)}" for k, f in figs.items()) + "}"
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")  # safe inside <script>


def _plot_divs(ids: list[str]) -> str:
    return "".join(f'<div class="card"><div class="plot" id="{i}"></div></div>' for i in ids)


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _subtitle(meta: dict | None) -> str:
    if not meta:
        return "no run.json found: metadata unavailable"
    manifest = meta.get("manifest") or {}
    when = meta.get("started") or meta.get("created") or ""
    parts = [
        str(manifest.get("name") or ""),
        str(manifest.get("description") or ""),
        str(when),
        str(meta.get("state") or ""),
    ]
    return " · ".join(p for p in parts if p)


def _header_stats(rows: list[dict]) -> str:
    overall = [r for r in rows if r["group_field"] == "overall"]
    stats = [
        ("records", f"{sum(r['n'] for r in overall):,}"),
        ("models", str(len({r["model"] for r in overall}))),
        ("benchmarks", str(len({r["benchmark"] for r in overall}))),
        ("strategies", str(len({r["strategy"] for r in overall}))),
        ("flagged cells", str(sum(bool(r["flag"]) for r in overall))),
    ]
    arms = {r["guardrail"] for r in overall if r.get("guardrail") is not None}
    if arms:
        stats.insert(2, ("guardrail arms", str(len(arms))))
    return "".join(f'<div class="stat"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for k, v in stats)


def _table(header: list[str], body: list[list[str]], row_classes: list[str] | None = None, table_id: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = []
    for i, r in enumerate(body):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{escape(c)}</td>' if _numeric(c) else f"<td>{escape(c)}</td>" for c in r)
        lines.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    table = f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    return f'<div class="table-wrap">{table}</div>'


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "+-–<") and len(cell) < 40


def _summary_table(summary: pa.Table) -> str:
    sections = fmt.summary_sections(fmt.select_grouping(summary, None), short_flags=True) if summary.num_rows else []
    out = []
    for title, header, body in sections:
        out.append(f'<h3 style="margin:14px 0 6px;font-size:14px">{escape(title)}</h3>')
        out.append(_table(header, body, ["flag" if r[-1] else "" for r in body], table_id=f"summary-{len(out)}"))
    return "".join(out) or _empty("No records yet.")


def _cost_table(summary: pa.Table) -> str:
    """Tokens and cost per model (endpoint candidates with prices have USD), when records count tokens."""
    out = []
    for title, header, body in fmt.cost_sections(summary):
        out.append(f'<h3 style="margin:14px 0 6px;font-size:14px">{escape(title)}</h3>')
        out.append(_table(header, body, table_id="cost-table"))
    return "".join(out)


def _paired_lead(comps: list) -> str:
    if not comps:
        return "No paired comparisons: the run has a single model and strategy."
    return (
        f"{len(comps)} comparisons, each other − baseline on pairs present and parsed on both sides "
        "(dropped pairs counted). "
        "The item is the unit: binary outcomes use McNemar (exact below 25 discordant pairs), or with several "
        "samples per item the clustered McNemar (Durkalski; exact sign-flip below 25 discordant items), with the "
        "discordant odds ratio; 1–5 scores the Wilcoxon signed-rank test on per-item mean differences. Effect CIs: "
        "adjusted Wald (Bonett–Price). p-values Holm-adjusted across the whole table; bold = significant at 0.05."
    )


def _paired_table(comps: list, judge_flagged: dict | None = None) -> str:
    """The paired tests; a comparison whose judge failed its health checks is marked (and not shown as significant)."""
    if not comps:
        return _empty("Nothing to compare.")
    flagged = judge_flagged or {}
    rows = fmt.comparison_rows(comps)
    for row, c in zip(rows, comps):
        if c.kind in flagged:
            row[0] += f" {fmt.FLAG} judge flagged"
    classes = ["flag" if c.kind in flagged else "sig" if c.significant else "" for c in comps]
    return _table(fmt.COMPARE_HEADER, rows, classes, "paired-table")


def _flag_table(rows: list[dict]) -> str:
    flagged = [r for r in rows if r["flag"]]
    if not flagged:
        return '<p style="margin-top:10px"><span class="badge ok">no flagged rows</span></p>'
    header = ["model", "benchmark", "strategy", "group", "n", "parse fail", "errors", "why flagged"]
    overall = [r for r in flagged if r["group_field"] == "overall"]
    groups = [r for r in flagged if r["group_field"] != "overall"]
    out = '<h3 style="margin:14px 0 6px;font-size:14px">Flagged cells</h3>'
    out += (
        _table(header, [_flag_row(r) for r in overall], ["flag"] * len(overall), "flag-table")
        if overall
        else _empty("none")
    )
    if groups:
        out += (
            f'<details style="margin-top:10px"><summary>{len(groups)} flagged category rows</summary>'
            + _table(header, [_flag_row(r) for r in groups], ["flag"] * len(groups))
            + "</details>"
        )
    return out


def _flag_row(r: dict) -> list[str]:
    group = f"{r['group_field']}={r['group_value']}" if r["group_value"] else "overall"
    return [
        fmt.model_arm(r),
        r["benchmark"],
        r["strategy"],
        group,
        str(r["n"]),
        f"{100 * r['parse_fail_rate']:.1f}%",
        f"{100 * r['error_rate']:.1f}%",
        r["flag_reason"] or "",
    ]
