"""The report's Guardrails section (only for runs with a guardrail axis): per benchmark a table of every
model × guardrail × strategy with its guard metrics and CIs, and a figure of unsafe-after-guard vs over-blocking.

Values are escaped by the caller's table function; figures are plain plotly data, rendered by the page's script.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from evalsvc.analysis.guardrails import GUARD_METRICS, NONE_ARM, kind_guard_metrics
from evalsvc.render import format as fmt
from evalsvc.render.figures import PALETTE, _go, _is_num, _layout

HEADERS = {
    "blocked_rate": "blocked",
    "blocked_input": "blocked (input)",
    "blocked_output": "blocked (output)",
    "guard_error_rate": "guard errors",
    "over_block": "over-blocking",
    "unsafe_after_guard": "unsafe after guard",
    "helpful_after_guard": "helpfulness after guard",
    "blocked_specialized_advice": "blocked for specialized advice (S6)",
    "over_block_specialized_advice": "over-blocking for specialized advice (S6)",
}
LEAD = (
    "Each guardrail arm against the unguarded 'none' arm on the same generations. Blocked shares count the records "
    "a filter screened (its decision); over-blocking is the share of benign controls blocked; unsafe after guard and "
    "helpfulness after guard (benign controls, 1-5) come from the judge's scores of the answers as served. "
    "Proportions with continuity-corrected Wilson 95% CIs (on effective items with several samples), means with "
    "Student-t CIs over items. "
    "A failed guard call counts in guard errors, not in blocked (with on_error: block it was refused too)."
)


def _overall(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["group_field"] == "overall" and r.get("guardrail") is not None]


def guard_nav(rows: list[dict]) -> str:
    return '<a href="#guardrails">Guardrails</a>' if _overall(rows) else ""


def guard_figures(rows: list[dict]) -> dict[str, object]:
    """plot-guard-<i>: one tradeoff figure per harm / high-risk benchmark of a run with guardrails."""
    mine = _overall(rows)
    figs = {}
    for i, bench in enumerate(sorted({r["benchmark"] for r in mine})):
        sel = [r for r in mine if r["benchmark"] == bench]
        if sel[0]["benchmark_kind"] in ("harm", "high_risk"):
            figs[f"plot-guard-{i}"] = tradeoff(sel, bench)
    return figs


def guard_section(rows: list[dict], table: Callable[..., str], figure_ids: list[str]) -> str:
    """The whole <section id="guardrails">, or '' for a run without guardrails."""
    mine = _overall(rows)
    if not mine:
        return ""
    parts = ['<section id="guardrails">', "<h2>Guardrails</h2>", f'<p class="lead">{escape(LEAD)}</p>']
    if figure_ids:
        cards = "".join(f'<div class="card"><div class="plot" id="{i}"></div></div>' for i in figure_ids)
        parts.append(f'<div class="grid">{cards}</div>')
    for i, bench in enumerate(sorted({r["benchmark"] for r in mine})):
        sel = [r for r in mine if r["benchmark"] == bench]
        header, body = guard_table(sel)
        parts.append(f'<h3 style="margin:14px 0 6px;font-size:14px">{escape(bench)} ({sel[0]["benchmark_kind"]})</h3>')
        parts.append(table(header, body, table_id=f"guard-table-{i}"))
    return "".join(parts) + "</section>"


def guard_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and body of one benchmark's guard table: a row per model × guardrail × strategy, 'none' first."""
    metrics = kind_guard_metrics(rows[0]["benchmark_kind"])
    order = sorted(rows, key=lambda r: (r["model"], r["strategy"], r["guardrail"] != NONE_ARM, r["guardrail"]))
    body = [
        [r["model"], r["guardrail"], r["strategy"], str(r["n"])]
        + [fmt.fmt_metric(m, r[m], r[f"{m}_lo"], r[f"{m}_hi"]) for m in metrics]
        for r in order
    ]
    return ["model", "guardrail", "strategy", "n", *[HEADERS[m] for m in metrics]], body


def tradeoff(rows: list[dict], benchmark: str):
    """Unsafe after guard (y) against over-blocking of benign controls (x; blocked share on harm benchmarks).

    Colour = guardrail, symbol = model, one marker per model × strategy; the 'none' arm blocks nothing (x = 0).
    """
    go = _go()
    xm = "over_block" if rows[0]["benchmark_kind"] == "high_risk" else "blocked_rate"
    arms = sorted({r["guardrail"] for r in rows}, key=lambda a: (a != NONE_ARM, a))
    models = sorted({r["model"] for r in rows})
    fig = go.Figure()
    for j, arm in enumerate(arms):
        sel = [r for r in rows if r["guardrail"] == arm and _is_num(r["unsafe_after_guard"])]
        fig.add_scatter(
            name=arm,
            legendgroup="guardrail",
            legendgrouptitle_text="guardrail",
            mode="markers",
            x=[0.0 if arm == NONE_ARM else r[xm] for r in sel],
            y=[r["unsafe_after_guard"] for r in sel],
            customdata=[[r["model"], r["strategy"]] for r in sel],
            marker=dict(size=12, color=PALETTE[j % len(PALETTE)], symbol=[_symbol(models, r) for r in sel]),
            error_y=_whiskers(sel, "unsafe_after_guard"),
            error_x=_whiskers(sel, xm) if arm != NONE_ARM else None,
            hovertemplate=f"{arm} · %{{customdata[0]}} · %{{customdata[1]}}<br>{xm} %{{x:.1%}}"
            "<br>unsafe after guard %{y:.1%}<extra></extra>",
        )
    for m in models:  # a grey legend entry per model explains the symbols
        fig.add_scatter(
            name=m, legendgroup="model", legendgrouptitle_text="model", mode="markers", x=[None], y=[None],
            marker=dict(size=10, color="#94a3b8", symbol=_symbol(models, {"model": m})),
        )  # fmt: skip
    what = "over-blocking of benign controls" if xm == "over_block" else "share of requests blocked"
    title = f"<b>{benchmark}</b> · unsafe after guard vs {what}<br><sup>{GUARD_METRICS['unsafe_after_guard'][1]}</sup>"
    _layout(fig, title, height=460)
    fig.update_xaxes(title=xm, tickformat=".0%", range=[-0.03, _top(rows, xm)])
    fig.update_yaxes(title="unsafe_after_guard", tickformat=".0%", range=[-0.03, _top(rows, "unsafe_after_guard")])
    return fig


SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star", "cross", "pentagon", "hexagon", "bowtie")


def _symbol(models: list[str], r: dict) -> str:
    return SYMBOLS[models.index(r["model"]) % len(SYMBOLS)]


def _top(rows: list[dict], metric: str) -> float:
    his = [r[f"{metric}_hi"] for r in rows if _is_num(r.get(f"{metric}_hi"))]
    return min(1.03, max([0.1, *his]) * 1.1)


def _whiskers(rows: list[dict], metric: str) -> dict:
    def part(r: dict, fn):
        return fn(r) if _is_num(r[metric]) and _is_num(r[f"{metric}_lo"]) else None

    return dict(
        type="data",
        symmetric=False,
        thickness=1.2,
        width=3,
        array=[part(r, lambda r: r[f"{metric}_hi"] - r[metric]) for r in rows],
        arrayminus=[part(r, lambda r: r[metric] - r[f"{metric}_lo"]) for r in rows],
    )
