"""Render summaries and comparisons for people (rich tables, Markdown) and machines (CSV, JSON).

Proportions print as percentages with their CI, means with two decimals; flagged rows carry a visible marker.
"""

from __future__ import annotations

import csv
import io
import math

import pyarrow as pa
import pyarrow.compute as pc

from evalsvc.analysis.guardrails import GUARD_MEANS, GUARD_SHOWN, kind_guard_metrics
from evalsvc.analysis.metrics import GROUP_FIELDS, metrics_of
from evalsvc.errors import UserError

MEANS = {"mean_harm", "mean_helpfulness", *GUARD_MEANS}
FLAG = "⚠"


def select_grouping(summary: pa.Table, by: str | None) -> pa.Table:
    """The overall rows (by=None) or the rows grouped by category field `by`."""
    if by is None:
        return summary.filter(pc.equal(summary["group_field"], "overall"))
    present = sorted(set(summary["group_field"].to_pylist()) - {"overall"})
    if by not in present:
        raise UserError(
            f"--by {by!r}: this run has no records with that field; choose one of {', '.join(present) or '(none)'} "
            f"(category fields: {', '.join(GROUP_FIELDS)})"
        )
    return summary.filter(pc.equal(summary["group_field"], by))


def fmt_metric(metric: str, value, lo, hi) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if metric in MEANS:
        return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"
    return f"{100 * value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "–"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


def summary_sections(rows: pa.Table, short_flags: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, body) per benchmark: each kind shows its own metrics (`short_flags`: ⚠ without the reason)."""
    sections = []
    data = rows.to_pylist()
    grouped = any(r["group_field"] != "overall" for r in data)
    for bench in sorted({r["benchmark"] for r in data}):
        mine = [r for r in data if r["benchmark"] == bench]
        kind = mine[0]["benchmark_kind"]
        guarded = any(r.get("guardrail") is not None for r in mine)
        metrics = metrics_of(kind) + ([m for m in GUARD_SHOWN if m in kind_guard_metrics(kind)] if guarded else [])
        header = [
            "model",
            *(["guardrail"] if guarded else []),
            "strategy",
            *([mine[0]["group_field"]] if grouped else []),
            "n",
            "scored",
            "items",
            *metrics,
            *(["criteria", "criteria failed"] if kind == "rubric" else []),
            "parse fail",
            "errors",
            "flag",
        ]
        body = []
        for r in mine:
            body.append(
                [
                    r["model"],
                    *([r["guardrail"] or ""] if guarded else []),
                    r["strategy"],
                    *([r["group_value"]] if grouped else []),
                    str(r["n"]),
                    str(r["n_scored"]),
                    str(r["n_items_scored"]),
                    *[fmt_metric(m, r[m], r[f"{m}_lo"], r[f"{m}_hi"]) for m in metrics],
                    *(_criteria_cells(r) if kind == "rubric" else []),
                    f"{100 * r['parse_fail_rate']:.1f}%",
                    f"{100 * r['error_rate']:.1f}%",
                    (FLAG if short_flags else f"{FLAG} {r['flag_reason']}") if r["flag"] else "",
                ]
            )
        title = f"{bench} ({kind})" + (RUBRIC_NOTE if kind == "rubric" else "")
        sections.append((title, header, body))
    return sections


# Said wherever rubric scores are shown: a failed criterion is never counted as met or as unmet.
RUBRIC_NOTE = " — criteria whose grading failed are left out of both numerator and denominator"


def _criteria_cells(r: dict) -> list[str]:
    n, failed = r.get("n_criteria"), r.get("n_criteria_failed")
    if n is None:
        return ["–", "–"]
    rate = f" ({100 * failed / n:.1f}%)" if n else ""
    return [str(n), f"{failed}{rate}"]


def cost_sections(summary: pa.Table) -> list[tuple[str, list[str], list[list[str]]]]:
    """Tokens and USD per model (a section only when the records have token counts)."""
    from evalsvc.analysis.summary import cost_section

    cost = cost_section(summary) if summary.num_rows else None
    if not cost or not (cost["total"]["prompt_tokens"] or cost["total"]["completion_tokens"]):
        return []
    body = [[name, f"{u['prompt_tokens']:,}", f"{u['completion_tokens']:,}", fmt_usd(u["cost_usd"])]
            for name, u in [*sorted(cost["models"].items()), ("total", cost["total"])]]  # fmt: skip
    return [("tokens and cost", ["model", "prompt tokens", "completion tokens", "cost (USD)"], body)]


def fmt_usd(v: float | None) -> str:
    return "–" if v is None else f"{v:.6f}" if v < 1 else f"{v:,.2f}"


def flag_notes(rows: pa.Table) -> list[str]:
    """One line per flagged row, naming the cell and why."""
    notes = []
    for r in rows.to_pylist():
        if r["flag"]:
            group = f" {r['group_field']}={r['group_value']}" if r["group_value"] else ""
            notes.append(f"{model_arm(r)} / {r['benchmark']} / {r['strategy']}{group}: {r['flag_reason']}")
    return notes


def model_arm(r: dict) -> str:
    """The model of a summary row, with its guardrail arm when the run has one."""
    return f"{r['model']} [{r['guardrail']}]" if r.get("guardrail") is not None else r["model"]


def markdown(sections: list[tuple[str, list[str], list[list[str]]]]) -> str:
    out = []
    for title, header, body in sections:
        out += [f"### {title}", "", _md_row(header), _md_row(["---"] * len(header))]
        out += [_md_row(r) for r in body]
        out.append("")
    return "\n".join(out)


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def csv_text(rows: pa.Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(rows.column_names)
    for r in rows.to_pylist():
        writer.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in r.values()])
    return buf.getvalue()


def rich_tables(sections: list[tuple[str, list[str], list[list[str]]]], flagged: bool = True) -> list:
    """Rich tables of sections; `flagged`: the last column is the flag, and a flagged row shows in yellow."""
    from rich.table import Table

    tables = []
    for title, header, body in sections:
        t = Table(title=title, title_justify="left", header_style="bold")
        for h in header:
            t.add_column(h, justify="right" if h in ("n", "scored", "items") else "left", overflow="fold")
        for r in body:
            t.add_row(*r, style="yellow" if flagged and r[-1] else None)
        tables.append(t)
    return tables


COMPARE_HEADER = [
    "benchmark",
    "comparison",
    "outcome",
    "pairs (dropped)",
    "baseline",
    "other",
    "effect [95% CI]",
    "odds ratio [95% CI]",
    "test",
    "p",
    "p (Holm)",
]
TEST_NAMES = {
    "mcnemar-exact": "McNemar exact",
    "mcnemar-chi2-cc": "McNemar χ²",
    "clustered-mcnemar-exact": "clustered McNemar exact",
    "clustered-mcnemar": "clustered McNemar χ²",
    "wilcoxon": "Wilcoxon",
}


def comparison_rows(comps: list) -> list[list[str]]:
    rows = []
    for c in comps:
        pct = c.outcome not in ("harm_score", "helpfulness")
        rows.append(
            [
                c.benchmark,
                (f"{c.within} [{c.guardrail}]" if c.guardrail else c.within) + f": {c.baseline} → {c.other}",
                c.outcome,
                _pairs(c),
                _num(c.baseline_value, pct),
                _num(c.other_value, pct),
                _effect(c, pct),
                _or(c),
                TEST_NAMES.get(c.test, c.test),
                fmt_p(c.p),
                fmt_p(c.p_holm) + (" *" if c.significant else ""),
            ]
        )
    return rows


def _pairs(c) -> str:
    """Pairs (dropped), and the items they come from when an item has several (the unit of the test)."""
    items = f" · {c.n_items} items" if c.pairs_per_item > 1 else ""
    return f"{c.n_pairs} ({c.n_dropped}){items}"


def _num(v: float, pct: bool) -> str:
    if v is None or math.isnan(v):
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.2f}"


def _effect(c, pct: bool) -> str:
    if c.effect is None or math.isnan(c.effect):
        return "–"
    scale, unit = (100, " pp") if pct else (1, "")
    return f"{scale * c.effect:+.2f}{unit} [{scale * c.effect_lo:+.2f}, {scale * c.effect_hi:+.2f}]"


def _or(c) -> str:
    if c.odds_ratio is None or math.isnan(c.odds_ratio):
        return "–"
    return f"{_ratio(c.odds_ratio)} [{_ratio(c.odds_ratio_lo)}, {_ratio(c.odds_ratio_hi)}]"


def _ratio(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.2f}"
