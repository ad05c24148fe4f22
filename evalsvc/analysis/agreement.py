"""Agreement between the jurors of a jury, from the votes in records: pairwise κ and exact agreement per benchmark,
per kind and overall, and the records where jurors disagree (scores 2+ apart, or different labels).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

import pyarrow as pa
import pyarrow.compute as pc

from evalsvc.analysis.stats import cohen_kappa
from evalsvc.judge.jury import read_votes
from evalsvc.specs.judge_parsers import HIGH_RISK_LABELS

VOTE_COLUMNS = ("model", "benchmark", "strategy", "benchmark_kind", "item_id", "sample_index", "judge_votes")
SCORES = [1, 2, 3, 4, 5]
MEASURES = {"harm": ("score",), "high_risk": ("label", "score")}  # what jurors are compared on, per kind
VERDICT = {"harm": "score", "high_risk": "label"}  # the headline measure of a kind (pooled in "overall")
MAX_CASES = 200  # disagreement cases kept for the report (all are counted)


@dataclass
class VoteData:
    """The parsed votes of every jury-judged record, compact: (score, label) per juror, raws left out."""

    jurors: list[str] = field(default_factory=list)  # in order of first appearance
    by_benchmark: dict[tuple[str, str], list[dict[str, tuple]]] = field(default_factory=dict)  # (kind, bench) → records
    disagreements: list[dict] = field(default_factory=list)  # record identity + votes, the first MAX_CASES
    n_disagreements: int = 0
    n_records: int = 0


def collect_votes(cells: Iterable[pa.Table]) -> VoteData:
    """Votes from tables with VOTE_COLUMNS (e.g. one per cell); records without votes are skipped."""
    data = VoteData()
    for table in cells:
        if "judge_votes" not in table.column_names or table.num_rows == 0:
            continue
        for rec in table.filter(pc.is_valid(table["judge_votes"])).to_pylist():
            _add(data, rec)
    return data


def _add(data: VoteData, rec: dict) -> None:
    votes = read_votes(rec["judge_votes"])
    for v in votes:
        if v.juror not in data.jurors:
            data.jurors.append(v.juror)
    parsed = {v.juror: (v.score, v.label) for v in votes if v.parse_ok}
    data.by_benchmark.setdefault((rec["benchmark_kind"], rec["benchmark"]), []).append(parsed)
    data.n_records += 1
    if disagrees(parsed):
        data.n_disagreements += 1
        if len(data.disagreements) >= MAX_CASES:
            return
        keep = {k: rec.get(k) for k in VOTE_COLUMNS if k != "judge_votes"}
        data.disagreements.append({**keep, "votes": votes})


def disagrees(parsed: dict[str, tuple]) -> bool:
    """Jurors' scores 2 or more apart, or different labels (parsed votes only)."""
    scores = [s for s, _ in parsed.values() if s is not None]
    labels = {lab for _, lab in parsed.values() if lab is not None}
    return (bool(scores) and max(scores) - min(scores) >= 2) or len(labels) > 1


def agreement_section(data: VoteData) -> dict | None:
    """The "agreement" section of summary.json, or None when no record has jury votes."""
    if not data.n_records:
        return None
    rows = []
    kinds = sorted({k for k, _ in data.by_benchmark})
    pairs = list(combinations(data.jurors, 2))
    for a, b in pairs:
        pooled = [(k, r) for (k, _), recs in data.by_benchmark.items() for r in recs]
        rows.append(pair_row("overall", None, None, a, b, "verdict", pooled))
        for kind in kinds:
            recs = [(kind, r) for (k, _), rs in data.by_benchmark.items() if k == kind for r in rs]
            rows += [pair_row("kind", kind, None, a, b, on, recs) for on in MEASURES.get(kind, ())]
        for (kind, bench), recs in sorted(data.by_benchmark.items()):
            paired = [(kind, r) for r in recs]
            rows += [pair_row("benchmark", kind, bench, a, b, on, paired) for on in MEASURES.get(kind, ())]
    return {"jurors": data.jurors, "n_records": data.n_records, "n_disagreements": data.n_disagreements, "rows": rows}


def pair_row(scope: str, kind: str | None, bench: str | None, a: str, b: str, on: str, recs: list[tuple]) -> dict:
    """Agreement of jurors a and b on the records where both parsed (`on`: score, label, or each kind's verdict)."""
    va, vb, kinds = [], [], set()
    for k, parsed in recs:
        measure = VERDICT.get(k, "score") if on == "verdict" else on
        x, y = _value(parsed.get(a), measure), _value(parsed.get(b), measure)
        if x is not None and y is not None:
            va.append(x)
            vb.append(y)
            kinds.add(k)
    row = {"scope": scope, "kind": kind, "benchmark": bench, "juror_a": a, "juror_b": b, "on": on, "n": len(va),
           "exact": sum(x == y for x, y in zip(va, vb)) / len(va) if va else None,
           "kappa": None, "kappa_lo": None, "kappa_hi": None, "kappa_weights": None}  # fmt: skip
    if va and len(kinds) == 1:  # κ over two kinds' different scales would mean nothing: overall keeps exact only
        measure = VERDICT.get(next(iter(kinds)), "score") if on == "verdict" else on
        weights = "quadratic" if measure == "score" else None  # scores are ordered; behaviour labels are not
        labels = SCORES if weights else list(HIGH_RISK_LABELS)
        seed = zlib.crc32(f"{scope}{bench}{a}{b}{on}".encode())
        kp = cohen_kappa(va, vb, labels=labels, weights=weights, seed=seed)
        row.update(kappa=_num(kp.kappa), kappa_lo=_num(kp.lo), kappa_hi=_num(kp.hi), kappa_weights=weights)
    return row


def _value(vote: tuple | None, measure: str):
    if vote is None:
        return None
    score, label = vote
    if measure == "score":
        return int(score) if score is not None else None
    return label


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def judge_sections(src) -> dict:
    """The summary.json sections about the judge a run has: "judge_health" (every judged run), "agreement" (a jury)
    and "calibration" (a slice)."""
    from evalsvc.analysis.calibration import calibration_section, read_calibration_table
    from evalsvc.analysis.health_read import health_section
    from evalsvc.store.read import iter_cells, records_dataset

    out = {}
    health = health_section(src)
    if health is not None:
        out["judge_health"] = health
    agreement = agreement_section(collect_votes(iter_cells(records_dataset(src), VOTE_COLUMNS)))
    if agreement is not None:
        out["agreement"] = agreement
    table = read_calibration_table(src)
    if table is not None and table.num_rows:
        out["calibration"] = calibration_section(table)
    return out
