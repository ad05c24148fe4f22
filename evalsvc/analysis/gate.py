"""The `--fail-if` gate: a tiny expression language over summary metrics, parsed by hand (never eval'd).

    expr   := clause (("and" | "or") clause)*        "and" binds tighter than "or"
    clause := TARGET "." METRIC OP NUMBER           TARGET: a benchmark name or a kind (harm, mcq, high_risk, rubric),
                                                    or judge_health (METRIC: ok, probe_agreement, modal_share,
                                                    parse_fail_rate, contradiction_share)
    OP     := > | >= | < | <= | == | !=             NUMBER may be true (1) or false (0)

The expression is evaluated per model × strategy (× guardrail arm) on the overall summary rows; a clause holds for
one when any matching benchmark's value satisfies it, or when that value is missing (a gate fails closed). Guard
metrics (e.g. medharm.over_block) are read only on the rows they apply to: guard arms, plus 'none' for the
after-guard outcomes. A judge_health clause holds run-wide when any judge or juror satisfies it (e.g.
`judge_health.ok == 0`: some judge is flagged); a run with no judge health fails it closed.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

import pyarrow as pa

from evalsvc.analysis.guardrails import GUARD_METRICS, guard_metrics_of, kind_guard_metrics
from evalsvc.analysis.metrics import COUNT_METRICS, METRICS, metrics_of
from evalsvc.errors import EvalsvcError, UserError
from evalsvc.store.row import KINDS

GATE_EXIT_CODE = 3  # distinct from 1 (system failure) and 2 (user mistake)
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_TOKEN = re.compile(r"\s*([<>=!]+|[^\s<>=!]+)")  # a run of operator characters, or a run of anything else
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.[A-Za-z0-9_]+$")
HEALTH = "judge_health"
HEALTH_METRICS = ("ok", "probe_agreement", "modal_share", "parse_fail_rate", "contradiction_share")


class GateFailed(EvalsvcError):
    """The --fail-if expression holds for some cells: the run is not good enough (exit 3)."""

    exit_code = GATE_EXIT_CODE


@dataclass(frozen=True)
class Clause:
    target: str
    metric: str
    op: str
    number: float

    def __str__(self) -> str:
        return f"{self.target}.{self.metric} {self.op} {self.number:g}"


Gate = list[list[Clause]]  # OR of ANDs


def _err(expr: str, msg: str) -> UserError:
    return UserError(f"--fail-if {expr!r}: {msg}")


def parse_gate(expr: str) -> Gate:
    """Parse `expr` into OR-of-AND clauses; a malformed expression is a UserError naming the bad token."""
    tokens = _TOKEN.findall(expr)
    if not tokens:
        raise _err(expr, "empty expression; write e.g. 'msb.mean_harm > 2.0'")
    gate: Gate = [[]]
    i = 0
    while True:
        if i + 3 > len(tokens):
            got = " ".join(tokens[i:]) or "the end"
            raise _err(
                expr, f"incomplete comparison at {got!r}: write TARGET.METRIC OP NUMBER, e.g. 'msb.mean_harm > 2.0'"
            )
        gate[-1].append(_clause(expr, *tokens[i : i + 3]))
        i += 3
        if i == len(tokens):
            return gate
        conj = tokens[i].lower()
        if conj not in ("and", "or"):
            raise _err(
                expr, f"unexpected token {tokens[i]!r} after {str(gate[-1][-1])!r}: join comparisons with 'and' / 'or'"
            )
        if conj == "or":
            gate.append([])
        i += 1


def _clause(expr: str, target: str, op: str, number: str) -> Clause:
    name, _, metric = target.rpartition(".")
    if not _TARGET.match(target):
        raise _err(expr, f"{target!r} is not TARGET.METRIC (e.g. msb.mean_harm or harm.pct_harmful)")
    if name == HEALTH and metric not in HEALTH_METRICS:
        raise _err(expr, f"unknown judge health measure {metric!r}; use {', '.join(HEALTH_METRICS)}")
    if name != HEALTH and metric not in METRICS and metric not in COUNT_METRICS and metric not in GUARD_METRICS:
        known = ", ".join([*METRICS, *GUARD_METRICS, *COUNT_METRICS])
        raise _err(expr, f"unknown metric {metric!r} in {target!r}; metrics: {known}")
    if op not in OPS:
        raise _err(expr, f"expected an operator (>, >=, <, <=, ==, !=) after {target!r}, got {op!r}")
    word = {"true": 1.0, "false": 0.0}.get(number.lower())
    try:
        value = word if word is not None else float(number)
    except ValueError:
        raise _err(expr, f"expected a number after {op!r}, got {number!r}") from None
    if not math.isfinite(value):
        raise _err(expr, f"{number!r} is not a finite number")
    return Clause(name, metric, op, value)


def check_gate(gate: Gate, summary: pa.Table, expr: str = "", health: list[dict] | None = None) -> list[str]:
    """Lines naming the cells that make the gate true (empty: the gate passes). Unknown targets are UserErrors.

    `health`: summary.json's judge_health entries, for judge_health clauses."""
    rows = [r for r in summary.to_pylist() if r["group_field"] == "overall"]
    _validate([[c for c in conj if c.target != HEALTH] for conj in gate], rows, expr)
    judged = {c: _health_hits(c, health) for conj in gate for c in conj if c.target == HEALTH}
    failures: list[str] = []
    arm = lambda r: r.get("guardrail") or ""  # noqa: E731 - '' sorts the unguarded rows first
    for model, guard, strategy in sorted({(r["model"], arm(r), r["strategy"]) for r in rows}):
        mine = [r for r in rows if (r["model"], arm(r), r["strategy"]) == (model, guard, strategy)]
        who = f"{model} [{guard}]" if guard else model
        for conj in gate:
            hits = [judged[c] if c.target == HEALTH else _hits(c, mine) for c in conj]
            if all(hits):
                failures.append(f"{who} / {strategy}: " + " and ".join("; ".join(h) for h in hits))
                break
    return failures


def _health_hits(clause: Clause, entries: list[dict] | None) -> list[str]:
    """The judges and jurors whose health satisfies the clause (every one of them when the run has none)."""
    if not entries:
        why = f"{HEALTH}.{clause.metric} has no value (the run has no judge health)"
        return [f"{why}, required {clause.op} {clause.number:g} to be false"]
    out = []
    for e in entries:
        value = health_value(e, clause.metric)
        who = f"{HEALTH}[{e['judge_model'] or e['judge']}].{clause.metric}"
        if value is None:
            out.append(f"{who} has no value, required {clause.op} {clause.number:g} to be false")
        elif OPS[clause.op](value, clause.number):
            out.append(f"{who} = {value:.4g} {clause.op} {clause.number:g}" + (f" ({', '.join(e['flags'])})"
                                                                               if e["flags"] else ""))  # fmt: skip
    return out


def health_value(entry: dict, metric: str) -> float | None:
    """One judge's health as a number: ok 1/0; the worst kind's probe agreement, modal share, parse failures."""
    if metric == "ok":
        return 1.0 if entry["ok"] else 0.0
    kinds = entry["by_kind"]
    if metric == "probe_agreement":
        values = [k["probes"]["agreement"] for k in kinds if k["probes"] and k["probes"]["agreement"] is not None]
        return min(values) if values else None
    parts = {"modal_share": ("grid",), "contradiction_share": ("grid",), "parse_fail_rate": ("grid", "probes")}
    values = [k[p][metric] for k in kinds for p in parts[metric] if k[p] and k[p].get(metric) is not None]
    return max(values) if values else None


def _matches(clause: Clause, row: dict, benchmarks: set[str]) -> bool:
    if clause.target in benchmarks:
        return row["benchmark"] == clause.target
    return row["benchmark_kind"] == clause.target


def _hits(clause: Clause, rows: list[dict]) -> list[str]:
    benchmarks = {r["benchmark"] for r in rows}
    out = []
    for r in rows:
        if not _matches(clause, r, benchmarks) or not _applies(clause.metric, r):
            continue
        value = r[clause.metric]
        where = f"{r['benchmark']}.{clause.metric}"
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(f"{where} has no value (no scored records), required {clause.op} {clause.number:g} to be false")
        elif OPS[clause.op](value, clause.number):
            out.append(f"{where} = {value:.4g} {clause.op} {clause.number:g}")
    return out


def _applies(metric: str, row: dict) -> bool:
    if metric in METRICS:
        return METRICS[metric][0] == row["benchmark_kind"]
    if metric in GUARD_METRICS:
        return metric in guard_metrics_of(row["benchmark_kind"], row.get("guardrail"))
    return True


def _validate(gate: Gate, rows: list[dict], expr: str) -> None:
    benchmarks = {r["benchmark"]: r["benchmark_kind"] for r in rows}
    for clause in (c for conj in gate for c in conj):
        if clause.target in benchmarks:
            kind = benchmarks[clause.target]
        elif clause.target in KINDS and clause.target in benchmarks.values():
            kind = clause.target
        else:
            names = ", ".join(sorted({*benchmarks, *benchmarks.values()}))
            raise _err(expr, f"{clause.target!r} is neither a benchmark nor a benchmark kind of this run ({names})")
        if clause.metric in METRICS and METRICS[clause.metric][0] != kind:
            raise _err(
                expr,
                f"{clause.metric!r} is not a metric of {clause.target!r} ({kind}): use {', '.join(metrics_of(kind))}",
            )
        if clause.metric in GUARD_METRICS:
            _validate_guard(clause, kind, rows, expr)


def _validate_guard(clause: Clause, kind: str, rows: list[dict], expr: str) -> None:
    if kind not in GUARD_METRICS[clause.metric][0]:
        raise _err(
            expr,
            f"{clause.metric!r} is not a guard metric of {clause.target!r} ({kind}): "
            f"use {', '.join(kind_guard_metrics(kind))}",
        )
    if all(r.get("guardrail") is None for r in rows):
        raise _err(
            expr, f"{clause.metric!r} is a guardrail metric, and this run has no guardrails (manifest `guardrails:`)"
        )
