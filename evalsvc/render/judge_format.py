"""Tables of the judge's own quality, shared by `evalsvc results`, `evalsvc judge calibrate` and the HTML report:
jury agreement (pairwise κ) and calibration against reference labels (agreement, confusion matrix, bias).
"""

from __future__ import annotations

Section = tuple[str, list[str], list[list[str]]]  # title, header, body: what format.rich_tables / markdown take

AGREEMENT_HEADER = ["scope", "jurors", "on", "n", "exact agreement", "κ [95% CI]"]
CALIBRATION_HEADER = ["judge", "n", "parsed", "exact", "within 1", "κ [95% CI]", "judge mean", "reference mean",
                      "bias [95% CI]"]  # fmt: skip


def agreement_sections(section: dict | None) -> list[Section]:
    """One table of pairwise agreement rows (overall, per kind, per benchmark)."""
    if not section:
        return []
    body = [
        [_scope(r), f"{r['juror_a']} × {r['juror_b']}", _on(r), str(r["n"]), pct(r["exact"]), kappa(r)]
        for r in section["rows"]
    ]
    title = (f"judge agreement ({len(section['jurors'])} jurors, {section['n_records']} records, "
             f"{section['n_disagreements']} with disagreement)")  # fmt: skip
    return [(title, AGREEMENT_HEADER, body)]


def calibration_sections(section: dict | None) -> list[Section]:
    """The per-judge agreement with the reference, then one confusion matrix per judge."""
    if not section:
        return []
    title = (f"judge calibration: {section['n_items']} labelled {section['kind']} items "
             f"(rubric {section['rubric_id']}@{section['rubric_version']})")  # fmt: skip
    out = [(title, CALIBRATION_HEADER, [calibration_row(v) for v in section["jurors"]])]
    out += [confusion_section(v) for v in section["jurors"]]
    return out


def calibration_row(v: dict) -> list[str]:
    pct_mean = v.get("bias_on") != "score"  # labels: the means and bias are unsafe_actionable rates
    return [
        v["juror"], str(v["n"]), str(v["n_parsed"]), pct(v["exact"]), pct(v["within1"]), kappa(v),
        number(v["mean_judge"], pct_mean), number(v["mean_reference"], pct_mean), bias(v, pct_mean),
    ]  # fmt: skip


def confusion_section(v: dict) -> Section:
    """Rows: the reference; columns: what the judge said (parsed rows only)."""
    labels = [str(x) for x in v["labels"]]
    body = [[lab, *map(str, row)] for lab, row in zip(labels, v["confusion"])]
    return (f"confusion: {v['juror']}", ["reference \\ judge", *labels], body)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def number(x: float | None, as_pct: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if as_pct else f"{x:.2f}"


def kappa(r: dict) -> str:
    if r.get("kappa") is None:
        return "–"
    ci = f" [{r['kappa_lo']:.2f}, {r['kappa_hi']:.2f}]" if r.get("kappa_lo") is not None else ""
    return f"{r['kappa']:.2f}{ci}"


def bias(v: dict, as_pct: bool) -> str:
    if v.get("bias") is None:
        return "–"
    scale, unit = (100, " pp") if as_pct else (1, "")
    lo, hi = v.get("bias_lo"), v.get("bias_hi")
    ci = f" [{scale * lo:+.2f}, {scale * hi:+.2f}]" if lo is not None and hi is not None else ""
    return f"{scale * v['bias']:+.2f}{unit}{ci}"


def _scope(r: dict) -> str:
    if r["scope"] == "overall":
        return "overall"
    return f"{r['kind']}" if r["scope"] == "kind" else f"{r['benchmark']}"


def _on(r: dict) -> str:
    weights = r.get("kappa_weights")
    return f"{r['on']} (κ {weights})" if weights else r["on"]
