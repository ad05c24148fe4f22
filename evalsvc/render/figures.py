"""Plotly figures of the HTML report: headline heatmaps, per-category bars with CI whiskers, data-quality bars.

Each function takes summary rows (dicts) and returns a plotly Figure; nothing here touches the filesystem.
"""

from __future__ import annotations

import math

from evalsvc.analysis.metrics import GROUP_FIELDS, HIGHER_IS_WORSE, METRICS, headline
from evalsvc.errors import MissingExtra
from evalsvc.render.format import model_arm

PRIMARY_GROUP = {"harm": "principle", "mcq": "aspect", "high_risk": "category", "rubric": "axis"}
FONT = dict(family="Inter, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=13, color="#1f2937")
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569", "#ea580c"]


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError:  # pragma: no cover - depends on the environment
        raise MissingExtra("plotly (HTML report)", "report") from None
    return go


def _layout(fig, title: str, height: int) -> None:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", font=dict(size=15)),
        template="plotly_white",
        font=FONT,
        height=height,
        margin=dict(l=70, r=30, t=70, b=60),
        legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02, font=dict(size=12)),
    )


def _is_num(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _label(metric: str, v, lo, hi) -> str:
    if not _is_num(v):
        return "–"
    if metric in ("mean_harm", "mean_helpfulness"):
        return f"{v:.2f}<br>[{lo:.2f}, {hi:.2f}]"
    return f"{100 * v:.1f}%<br>[{100 * lo:.1f}, {100 * hi:.1f}]"


def heatmap(rows: list[dict], benchmark: str):
    """Model × strategy heatmap of the benchmark's headline metric, each cell labelled value [95% CI]."""
    go = _go()
    mine = [r for r in rows if r["benchmark"] == benchmark and r["group_field"] == "overall"]
    kind = mine[0]["benchmark_kind"]
    metric = headline(kind)
    models = sorted({model_arm(r) for r in mine})  # a guarded run has a row per model × guardrail arm
    strategies = sorted({r["strategy"] for r in mine})
    at = {(model_arm(r), r["strategy"]): r for r in mine}
    z, text = [], []
    for m in models:
        cells = [at.get((m, s)) for s in strategies]
        z.append([r[metric] if r and _is_num(r[metric]) else None for r in cells])
        text.append(
            [
                _label(metric, r[metric], r[f"{metric}_lo"], r[f"{metric}_hi"]) + (" ⚠" if r["flag"] else "")
                if r
                else ""
                for r in cells
            ]
        )
    scale = (1, 5) if metric.startswith("mean_") else (0, 1)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=strategies,
            y=models,
            text=text,
            texttemplate="%{text}",
            zmin=scale[0],
            zmax=scale[1],
            colorscale="YlOrRd" if metric in HIGHER_IS_WORSE else "YlGnBu",
            hoverongaps=False,
            colorbar=dict(title=dict(text=metric, side="right"), thickness=12),
            hovertemplate="model %{y}<br>strategy %{x}<br>" + metric + " %{z:.3f}<extra></extra>",
        )
    )
    _layout(fig, f"<b>{benchmark}</b> · {metric}<br><sup>{METRICS[metric][1]}</sup>", height=150 + 70 * len(models))
    fig.update_xaxes(side="bottom", title="strategy")
    fig.update_yaxes(title="model", autorange="reversed")
    return fig


def category_bars(rows: list[dict], benchmark: str):
    """The headline metric per value of the benchmark's main category field: a bar per model · strategy, CI whiskers."""
    go = _go()
    mine = [r for r in rows if r["benchmark"] == benchmark]
    kind = mine[0]["benchmark_kind"]
    field = _category_field(mine, kind)
    if field is None:
        return None
    grouped = [r for r in mine if r["group_field"] == field]
    # MedGuard reports its Safety Index per aspect; fall back to accuracy when no question is typed "safety"
    metric = "safety_index" if kind == "mcq" and any(_is_num(r["safety_index"]) for r in grouped) else headline(kind)
    fig = go.Figure()
    for i, combo in enumerate(sorted({(model_arm(r), r["strategy"]) for r in mine})):
        sel = sorted(
            (r for r in grouped if (model_arm(r), r["strategy"]) == combo), key=lambda r: _natural(r["group_value"])
        )
        fig.add_bar(name=" · ".join(combo), marker_color=PALETTE[i % len(PALETTE)], **_bar_data(sel, metric))
    title = f"<b>{benchmark}</b> · {metric} by {field}<br><sup>{METRICS[metric][1]}; whiskers: 95% CI</sup>"
    _layout(fig, title, height=470)
    fig.update_layout(barmode="group", bargap=0.25, margin=dict(b=80))
    fig.update_xaxes(title=field, type="category")
    mean = metric.startswith("mean_")
    fig.update_yaxes(title=metric, range=[1, 5] if mean else [0, 1], tickformat=None if mean else ".0%")
    return fig


def _category_field(rows: list[dict], kind: str) -> str | None:
    fields = {r["group_field"] for r in rows} - {"overall"}
    if PRIMARY_GROUP[kind] in fields:
        return PRIMARY_GROUP[kind]
    return next((f for f in GROUP_FIELDS if f in fields), None)


def _bar_data(rows: list[dict], metric: str) -> dict:
    def part(r: dict, fn):
        return fn(r) if _is_num(r[metric]) else None

    return dict(
        x=[r["group_value"] for r in rows],
        y=[part(r, lambda r: r[metric]) for r in rows],
        error_y=dict(
            type="data",
            symmetric=False,
            thickness=1.2,
            width=3,
            array=[part(r, lambda r: r[f"{metric}_hi"] - r[metric]) for r in rows],
            arrayminus=[part(r, lambda r: r[metric] - r[f"{metric}_lo"]) for r in rows],
        ),
        customdata=[[r["n_scored"], r[f"{metric}_lo"], r[f"{metric}_hi"]] for r in rows],
        hovertemplate="%{x}: %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}], n=%{customdata[0]}"
        "<extra>%{fullData.name}</extra>",
    )


def _natural(v: str):
    return (0, int(v), "") if v.isdigit() else (1, 0, v)


def quality_bars(rows: list[dict], threshold: float):
    """Parse-failure and error rate of every cell, stacked, with the flag threshold as a dashed line."""
    go = _go()
    cells = sorted(
        (r for r in rows if r["group_field"] == "overall"),
        key=lambda r: (r["benchmark"], r["model"], r.get("guardrail") or "", r["strategy"]),
    )
    x = [f"{r['benchmark']}<br>{model_arm(r)} · {r['strategy']}" for r in cells]
    fig = go.Figure()
    fig.add_bar(name="parse failures", x=x, y=[r["parse_fail_rate"] for r in cells], marker_color="#f59e0b")
    fig.add_bar(name="errors", x=x, y=[r["error_rate"] for r in cells], marker_color="#dc2626")
    fig.add_hline(
        y=threshold,
        line_dash="dash",
        line_color="#6b7280",
        annotation_text=f"flag threshold {threshold:.0%}",
        annotation_position="top left",
    )
    _layout(fig, "<b>Parse failures and errors per cell</b><br><sup>share of each cell's records</sup>", height=420)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    fig.update_layout(barmode="stack")
    top = max([threshold * 1.5, *[(r["parse_fail_rate"] or 0) + (r["error_rate"] or 0) for r in cells]])
    fig.update_yaxes(tickformat=".0%", range=[0, min(1.0, top * 1.1)], title="share of records")
    return fig
