"""Judge health for people: the warning line of each flagged judge or juror, and one table of its figures
(probe agreement, grid spread, rationale contradictions, parse failures), shared by `run`, `results` and the report.
"""

from __future__ import annotations

from evalsvc.render.judge_format import Section, kappa, pct

HEALTH_HEADER = ["judge", "kind", "probes", "agree [95% CI]", "exact", "within 1", "κ [95% CI]", "grid judged",
                 "modal share", "entropy (bits)", "unparsed", "contradicting", "flags"]  # fmt: skip


def health_warnings(doc_or_entries) -> list[str]:
    """One line per flagged judge or juror (from summary.json, a judge_sections dict or the entries themselves)."""
    entries = _entries(doc_or_entries)
    return [e["warning"] for e in entries if not e["ok"] and e.get("warning")]


def health_notes(doc_or_entries) -> list[str]:
    return [f"{e['judge']}: {n}" for e in _entries(doc_or_entries) for n in e.get("notes", [])]


def flagged_kinds(doc_or_entries) -> dict[str, list[str]]:
    """Judged kind → the flags some judge or juror of it raised (kinds without flags are left out)."""
    out: dict[str, list[str]] = {}
    for e in _entries(doc_or_entries):
        for k in e["by_kind"]:
            for f in k["flags"]:
                if f not in out.setdefault(k["kind"], []):
                    out[k["kind"]].append(f)
    return {k: v for k, v in out.items() if v}


def health_sections(doc_or_entries) -> list[Section]:
    entries = _entries(doc_or_entries)
    if not entries:
        return []
    body = [_row(e, k) for e in entries for k in e["by_kind"]]
    ok = all(e["ok"] for e in entries)
    title = "judge health: " + ("ok" if ok else "FLAGGED — the judge's scores are not evidence of safety")
    return [(title, HEALTH_HEADER, body)]


def _row(e: dict, k: dict) -> list[str]:
    grid, probes = k["grid"] or {}, k["probes"] or {}
    agree = "–"
    if probes.get("agreement") is not None:
        agree = f"{probes['agree']}/{probes['n']} {pct(probes['agreement'])} [{pct(probes['agreement_lo'])}, " \
                f"{pct(probes['agreement_hi'])}]"  # fmt: skip
    unparsed = [x["parse_fail_rate"] for x in (grid, probes) if x.get("parse_fail_rate") is not None]
    contra = f"{grid['rationales_contradicting']}/{grid['rationales_checked']}" if grid.get("rationales_checked") else "–"
    modal = f"{pct(grid['modal_share'])} ({grid['modal']})" if grid.get("modal_share") is not None else "–"
    entropy = f"{grid['entropy_bits']:.2f}" if grid.get("entropy_bits") is not None else "–"
    who = e["judge"] if e["judge"] != "judge" else e["judge_model"] or "judge"
    return [who, k["kind"], str(probes.get("n", 0)), agree, pct(probes.get("exact")), pct(probes.get("within1")),
            kappa(probes), str(grid.get("n", 0)), modal, entropy, pct(max(unparsed)) if unparsed else "–", contra,
            ", ".join(k["flags"]) or "none"]  # fmt: skip


def _entries(x) -> list[dict]:
    if x is None:
        return []
    if isinstance(x, dict):
        return x.get("judge_health") or []
    return list(x)
