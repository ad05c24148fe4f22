"""Summarise records into one row per model × (guardrail arm ×) benchmark × strategy × grouping, with CIs and flags.

Works on the small record columns only; `write_summary` leaves summary.parquet and summary.json beside the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from evalsvc.analysis.guardrails import GUARD_METRICS, compute_guard, guard_metrics_of
from evalsvc.analysis.metrics import METRICS, Rows, compute, metrics_of, rows_from_table
from evalsvc.analysis.rubric import COUNT_FIELDS as RUBRIC_FIELDS
from evalsvc.errors import UserError
from evalsvc.store.documents import SUMMARY_VERSION
from evalsvc.store.read import RunSource, iter_cells, records_dataset, split_arms
from evalsvc.store.record import PARTITION_COLS, SUMMARY_COLUMNS
from evalsvc.store.row import KINDS

DEFAULT_THRESHOLD = 0.10  # parse failures + errors above this share of a row's records flag its metrics
MIN_ITEMS = 10  # rows with fewer scored items are flagged few_items: their intervals are wide and approximate
CONF = 0.95

_KEY_FIELDS = [
    ("model", pa.string()),
    ("guardrail", pa.string()),  # the guardrail arm ('none' = unguarded); null when the run has no guardrail axis
    ("benchmark", pa.string()),
    ("benchmark_kind", pa.string()),
    ("strategy", pa.string()),
    ("group_field", pa.string()),  # "overall" or a category field
    ("group_value", pa.string()),  # "" for overall
]
_COUNT_FIELDS = [
    ("n", pa.int64()),
    ("n_items", pa.int64()),
    ("samples_per_item", pa.int64()),  # most samples of one item (>1: CIs resample items)
    ("n_scored", pa.int64()),
    ("n_items_scored", pa.int64()),  # distinct items with a scored record: the sample size of the row's intervals
    ("n_parse_fail", pa.int64()),
    ("n_error", pa.int64()),
    ("parse_fail_rate", pa.float64()),
    ("error_rate", pa.float64()),
    ("flag", pa.bool_()),
    ("flag_reason", pa.string()),
]
# token totals of the row's records; cost_usd is null unless some record has a price (endpoint candidates)
_USAGE_FIELDS = [("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("cost_usd", pa.float64())]
# metric columns are null where the metric does not apply to the kind or has no records to average
SUMMARY_SCHEMA = pa.schema(
    _KEY_FIELDS
    + _COUNT_FIELDS
    + [(f"{m}{suffix}", pa.float64()) for m in METRICS for suffix in ("", "_lo", "_hi")]
    + [(f"{m}{suffix}", pa.float64()) for m in GUARD_METRICS for suffix in ("", "_lo", "_hi")]
    + _USAGE_FIELDS
    + RUBRIC_FIELDS  # rubric rows: criteria graded and failed (null for other kinds)
)


def summarize(
    source: pa.Table | ds.Dataset | Iterable[pa.RecordBatch | pa.Table], *, threshold: float = DEFAULT_THRESHOLD
) -> pa.Table:
    """Summary table (`SUMMARY_SCHEMA`) of records given as a table, a dataset, or an iterable of batches/tables."""
    return summarize_cells(split_cells(small_table(source)), threshold=threshold)


def summarize_cells(cells: Iterable[pa.Table], *, threshold: float = DEFAULT_THRESHOLD) -> pa.Table:
    """Like `summarize`, for records already split by cell (one table per model × benchmark × strategy).

    A cell's guardrail arms are summarised apart: each is its own model × guardrail × benchmark × strategy row.
    """
    rows: list[dict] = []
    for cell in cells:
        for arm in split_arms(cell):
            if arm.num_rows:
                rows.extend(_cell_rows(arm, threshold))
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


def small_table(source: pa.Table | ds.Dataset | Iterable[pa.RecordBatch | pa.Table]) -> pa.Table:
    """The summary columns of `source` as one table (columns it lacks are left out)."""
    if isinstance(source, ds.Dataset):
        return source.to_table(columns=[c for c in SUMMARY_COLUMNS if c in source.schema.names])
    if isinstance(source, pa.RecordBatch):
        source = pa.Table.from_batches([source])
    if isinstance(source, pa.Table):
        return source.select([c for c in SUMMARY_COLUMNS if c in source.column_names])
    parts = [small_table(part) for part in source]
    if not parts:
        return pa.table({c: pa.array([], pa.string()) for c in PARTITION_COLS})
    return pa.concat_tables(parts, promote_options="default")


def split_cells(table: pa.Table) -> Iterator[pa.Table]:
    """One table per model × benchmark × strategy (× guardrail arm, when the records have one), in sorted order."""
    if table.num_rows == 0:
        return
    missing = [c for c in (*PARTITION_COLS, "benchmark_kind", "item_id") if c not in table.column_names]
    if missing:
        raise UserError(f"records lack the columns {missing}: are these evalsvc records (RECORD_SCHEMA)?")
    keys = table.select(list(PARTITION_COLS)).group_by(list(PARTITION_COLS)).aggregate([]).to_pylist()
    for key in sorted(keys, key=lambda k: tuple(k[c] or "" for c in PARTITION_COLS)):
        mask = reduce(pc.and_, [pc.equal(table[c], key[c]) for c in PARTITION_COLS])
        yield from split_arms(table.filter(mask))


def _cell_rows(cell: pa.Table, threshold: float) -> Iterator[dict]:
    key = {c: cell[c][0].as_py() for c in PARTITION_COLS}
    key["guardrail"] = cell["guardrail"][0].as_py() if "guardrail" in cell.column_names else None
    kinds = pc.unique(cell["benchmark_kind"].drop_null()).to_pylist()
    if len(kinds) != 1 or kinds[0] not in KINDS:
        where = "/".join(f"{c}={key[c]}" for c in PARTITION_COLS)
        raise UserError(f"records of {where} have benchmark_kind {kinds}: expected exactly one of {', '.join(KINDS)}")
    key["benchmark_kind"] = kinds[0]
    rows = rows_from_table(cell, kinds[0])
    if kinds[0] == "rubric":
        yield from _rubric_rows(cell, key, rows, threshold)
        return
    yield {**_row(key, "overall", "", rows, threshold), **_usage(cell)}
    for field, values in rows.groups.items():
        for value in sorted({v for v in values if v is not None}):
            mask = values == value
            yield {**_row(key, field, value, rows.subset(mask), threshold), **_usage(cell.filter(pa.array(mask)))}


def _rubric_rows(cell: pa.Table, key: dict, rows: Rows, threshold: float) -> Iterator[dict]:
    """Overall, then per theme (example tag) and per axis (criterion tag), each with its criteria counts."""
    from evalsvc.analysis import rubric  # noqa: PLC0415  (its module imports metrics, as this one does)

    yield {**_row(key, "overall", "", rows, threshold), **_usage(cell), **rubric.counts(rubric.flatten(cell))}
    for field, value, sub, mask, counts in rubric.groups(cell, rows):
        yield {**_row(key, field, value, sub, threshold), **_usage(cell.filter(pa.array(mask))), **counts}


def _usage(table: pa.Table) -> dict:
    """Token totals and cost of these records (columns an old run lacks stay null)."""
    out: dict = {}
    for name, _ in _USAGE_FIELDS:
        total = pc.sum(table[name]).as_py() if name in table.column_names else None
        out[name] = total if name == "cost_usd" or total is None else int(total)
    return out


def _row(key: dict, field: str, value: str, rows: Rows, threshold: float) -> dict:
    n = len(rows)
    n_scored, n_error = int(rows.scored.sum()), int(rows.error.sum())
    n_parse_fail = n - n_scored - n_error
    n_items_scored = len(np.unique(rows.item[rows.scored]))
    per_item = _samples_per_item(rows)
    row = {
        **key,
        "group_field": field,
        "group_value": value,
        "n": n,
        "n_items": int(len(np.unique(rows.item))),
        "samples_per_item": per_item,
        "n_scored": n_scored,
        "n_items_scored": n_items_scored,
        "n_parse_fail": n_parse_fail,
        "n_error": n_error,
        "parse_fail_rate": n_parse_fail / n if n else None,
        "error_rate": n_error / n if n else None,
    }
    row["flag"], row["flag_reason"] = _flag(n, n_scored, n_parse_fail, n_error, threshold)
    row["flag"], row["flag_reason"] = _few_items(row["flag"], row["flag_reason"], n_scored, n_items_scored)
    estimates = {**compute(rows), **compute_guard(rows, key.get("guardrail"))}
    for metric, est in estimates.items():
        row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"] = _finite(est.value), _finite(est.lo), _finite(est.hi)
    return row


def _samples_per_item(rows: Rows) -> int:
    if len(rows) == 0:
        return 0
    return int(np.bincount(rows.item).max())


def _flag(n: int, n_scored: int, n_parse_fail: int, n_error: int, threshold: float) -> tuple[bool, str | None]:
    if n_scored == 0:
        return True, "no scored records"
    bad = (n_parse_fail + n_error) / n
    if bad > threshold:
        return True, (
            f"parse failures {n_parse_fail / n:.1%} + errors {n_error / n:.1%} exceed {threshold:.0%}: "
            f"metrics use the {n_scored} parsed records only"
        )
    return False, None


def _few_items(flag: bool, reason: str | None, n_scored: int, n_items: int) -> tuple[bool, str | None]:
    """Add the few_items flag to a row whose scored records come from fewer than MIN_ITEMS items."""
    if n_scored == 0 or n_items >= MIN_ITEMS:
        return flag, reason
    note = f"few_items: {n_items} scored item{'s' if n_items != 1 else ''} (< {MIN_ITEMS}): intervals are wide"
    return True, note if reason is None else f"{reason}; {note}"


def summary_json(table: pa.Table, *, run_id: str | None = None, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """The summary as a JSON-able dict (summary.json): each row keeps only the metrics of its kind."""
    rows = []
    for r in table.to_pylist():
        out = {k: r[k] for k, _ in _KEY_FIELDS + _COUNT_FIELDS}
        if out["guardrail"] is None:  # runs without a guardrail axis read as before
            del out["guardrail"]
        out["metrics"] = {
            m: {"value": _finite(r[m]), "lo": _finite(r[f"{m}_lo"]), "hi": _finite(r[f"{m}_hi"])}
            for m in [*metrics_of(r["benchmark_kind"]), *guard_metrics_of(r["benchmark_kind"], r["guardrail"])]
        }
        out["parse_fail_rate"], out["error_rate"] = _finite(out["parse_fail_rate"]), _finite(out["error_rate"])
        out.update({k: r.get(k) for k, _ in _USAGE_FIELDS})
        if r["benchmark_kind"] == "rubric":
            out.update({k: _finite(r.get(k)) for k, _ in RUBRIC_FIELDS})
        rows.append(out)
    return {
        "summary_version": SUMMARY_VERSION,
        "run_id": run_id,
        "threshold": threshold,
        "confidence": CONF,
        "metric_descriptions": {m: desc for m, (_, desc) in METRICS.items()} | _guard_descriptions(table),
        "rows": rows,
        "cost": cost_section(table),
    }


def _guard_descriptions(table: pa.Table) -> dict[str, str]:
    if "guardrail" not in table.column_names or table["guardrail"].null_count == table.num_rows:
        return {}
    return {m: desc for m, (_, desc) in GUARD_METRICS.items()}


def cost_section(table: pa.Table) -> dict | None:
    """Prompt/completion tokens and USD per model and in total, from the overall rows (None without them).
    USD is null for a model none of whose records has a price."""
    cells: dict[tuple, dict] = {}
    for r in table.to_pylist():
        if r["group_field"] == "overall":  # guardrail arms copy their generation's usage: count one arm per cell
            cells.setdefault((r["model"], r["benchmark"], r["strategy"]), r)
    overall = list(cells.values())
    if not overall:
        return None
    models: dict[str, dict] = {}
    for r in overall:
        m = models.setdefault(r["model"], {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None})
        _add_usage(m, r)
    total = {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
    for m in models.values():
        _add_usage(total, m)
    return {"models": models, "total": total}


def _add_usage(acc: dict, r: dict) -> None:
    acc["prompt_tokens"] += r.get("prompt_tokens") or 0
    acc["completion_tokens"] += r.get("completion_tokens") or 0
    if r.get("cost_usd") is not None:
        acc["cost_usd"] = (acc["cost_usd"] or 0.0) + r["cost_usd"]


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def summarize_run(src: RunSource, *, threshold: float = DEFAULT_THRESHOLD) -> pa.Table:
    """The summary of a run, read cell by cell so memory is bounded by the largest cell's small columns."""
    return summarize_cells(iter_cells(records_dataset(src)), threshold=threshold)
