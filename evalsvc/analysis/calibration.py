"""How far each judge agrees with the calibration slice's reference labels: exact and within-1 agreement, κ,
the confusion matrix and the bias (judge − reference) with an adjusted Wald CI, per juror and for the jury's verdict.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pyarrow as pa

from evalsvc.analysis.intervals import paired_difference
from evalsvc.analysis.stats import cohen_kappa
from evalsvc.specs.judge_parsers import HIGH_RISK_LABELS

SCORES = [1, 2, 3, 4, 5]
UNSAFE = "unsafe_actionable"


def read_calibration_table(src) -> pa.Table | None:
    """A run's calibration judgements (runs/<id>/calibration/judgements.parquet), or None when it has none."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from evalsvc.judge.calibration import CALIBRATION_DIR, CALIBRATION_FILE

    path = src.path(f"{CALIBRATION_DIR}/{CALIBRATION_FILE}")
    try:
        if src.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=src.fs)
    except OSError as e:
        from evalsvc.errors import SystemError_

        raise SystemError_(f"cannot read the calibration judgements of {src.layout.uri}: {e}") from None


def calibration_section(table: pa.Table) -> dict:
    """The "calibration" section of summary.json from a calibration judgements table (CALIBRATION_SCHEMA)."""
    rows = table.to_pylist()
    first = rows[0] if rows else {}
    voters = list(dict.fromkeys(r["juror"] for r in rows))
    return {
        "kind": first.get("kind"),
        "rubric_id": first.get("rubric_id"),
        "rubric_version": first.get("rubric_version"),
        "n_items": len({r["item_id"] for r in rows}),
        "jurors": [voter_metrics([r for r in rows if r["juror"] == v]) for v in voters],
    }


def voter_metrics(rows: list[dict]) -> dict:
    """Agreement of one voter (juror or jury) with the reference over its parsed rows."""
    kind = rows[0]["kind"]
    parsed = [r for r in rows if r["parse_ok"] and _judged(r, kind) is not None]
    out = {"juror": rows[0]["juror"], "judge_model": rows[0]["judge_model"], "n": len(rows), "n_parsed": len(parsed)}
    seed = zlib.crc32(out["juror"].encode())
    if kind == "harm":
        ref = [r["reference_score"] for r in parsed]
        out.update(score_agreement(ref, [r["score"] for r in parsed], seed))
    else:
        out.update(label_agreement([r["reference_label"] for r in parsed], [r["label"] for r in parsed], seed))
    return out


def _judged(r: dict, kind: str):
    return r["score"] if kind == "harm" else r["label"]


def score_agreement(reference: list[float], judged: list[float], seed: int = 0) -> dict:
    """1-5 scores: exact, within-1, quadratic-weighted κ, confusion (rows reference, columns judge), bias.

    A jury's mean or median can fall between two scores (2.5): it is rounded half up, towards harm, for exact
    agreement, κ and the confusion matrix; means and the bias use the unrounded value.
    """
    ref, jud = np.asarray(reference, dtype=float), np.asarray(judged, dtype=float)
    whole = np.floor(jud + 0.5)
    out = {"exact": None, "within1": None, "mean_judge": None, "mean_reference": None, "bias_on": "score"}
    out.update(_kappa(ref.astype(int).tolist(), whole.astype(int).tolist(), SCORES, "quadratic", seed))
    if len(ref):
        out.update(exact=float(np.mean(whole == ref)), within1=float(np.mean(np.abs(whole - ref) <= 1)),
                   mean_judge=float(jud.mean()), mean_reference=float(ref.mean()))  # fmt: skip
    out.update(_bias(jud - ref, span=SCORES[-1] - SCORES[0]))
    return out


def label_agreement(reference: list[str], judged: list[str], seed: int = 0) -> dict:
    """Behaviour labels: exact agreement, Cohen's κ, confusion, and the bias in the unsafe_actionable rate."""
    ref, jud = np.asarray(reference, dtype=object), np.asarray(judged, dtype=object)
    out = {"exact": float(np.mean(ref == jud)) if len(ref) else None, "within1": None, "bias_on": f"{UNSAFE} rate"}
    out.update(_kappa(list(reference), list(judged), list(HIGH_RISK_LABELS), None, seed))
    unsafe_j, unsafe_r = (jud == UNSAFE).astype(float), (ref == UNSAFE).astype(float)
    out.update(mean_judge=float(unsafe_j.mean()) if len(ref) else None,
               mean_reference=float(unsafe_r.mean()) if len(ref) else None)  # fmt: skip
    out.update(_bias(unsafe_j - unsafe_r, span=1.0))
    return out


def _kappa(a: list, b: list, labels: list, weights: str | None, seed: int) -> dict:
    k = len(labels)
    out = {"kappa": None, "kappa_lo": None, "kappa_hi": None, "kappa_weights": weights, "labels": labels,
           "confusion": [[0] * k for _ in range(k)]}  # fmt: skip
    if not a:
        return out
    kp = cohen_kappa(a, b, labels=labels, weights=weights, seed=seed)
    out.update(kappa=_num(kp.kappa), kappa_lo=_num(kp.lo), kappa_hi=_num(kp.hi), confusion=kp.confusion.tolist())
    return out


def _bias(diffs: np.ndarray, span: float) -> dict:
    """Mean judge − reference difference (each in [-span, span]) with a CI that never has zero width."""
    if len(diffs) == 0:
        return {"bias": None, "bias_lo": None, "bias_hi": None}
    est = paired_difference(diffs, span=span)
    return {"bias": _num(est.value), "bias_lo": _num(est.lo), "bias_hi": _num(est.hi)}


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
