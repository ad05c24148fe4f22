"""Read a run's records (local folder or s3://) with pyarrow.dataset: Hive partitions, only the columns asked for.

Summaries go cell by cell over the small columns; the sample browser reads a few rows per cell with their text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from evalsvc.errors import SystemError_, UserError
from evalsvc.store.layout import RunLayout, resolve_run
from evalsvc.store.record import NONE_ARM, PARTITION_COLS, RECORD_SCHEMA, SUMMARY_COLUMNS
from evalsvc.store.uri import S3Conn, filesystem

TEXT_COLUMNS = ("messages", "response", "judge_raw")
SAMPLE_COLUMNS = (
    *PARTITION_COLS,
    "benchmark_kind",
    "item_id",
    "sample_index",
    "principle",
    "category",
    "aspect",
    "answer",
    "score",
    "label",
    "parse_ok",
    "error",
    "guardrail",
    "guard_input",
    "guard_output",
    *TEXT_COLUMNS,
    "guard_raw",
    "response_unguarded",
)
Cell = tuple[str, str, str]  # model, benchmark, strategy


@dataclass(frozen=True)
class RunSource:
    layout: RunLayout
    fs: pafs.FileSystem
    base: str  # the run folder inside `fs`

    def path(self, name: str) -> str:
        return f"{self.base}/{name}"


def open_run(run: str, root: str | None = None, conn: S3Conn | None = None) -> RunSource:
    """Resolve RUN (an id under `root`, or a run URI) to its filesystem; S3 settings from `conn` or AWS_* env."""
    layout = resolve_run(run, root)
    fs, base = filesystem(layout.uri, conn or (S3Conn.from_options(None) if layout.uri.startswith("s3://") else None))
    return RunSource(layout, fs, base)


def records_dataset(src: RunSource) -> ds.Dataset:
    return _dataset(src.fs, src.path("records"), src.layout.records)


def read_records(records_uri: str, conn: S3Conn | None = None, columns: tuple[str, ...] = SUMMARY_COLUMNS) -> pa.Table:
    """The small columns of every record under `records_uri` (…/runs/<id>/records), for `summarize`."""
    fs, path = filesystem(records_uri, conn)
    return read_small(_dataset(fs, path, records_uri), columns)


def _dataset(fs: pafs.FileSystem, path: str, uri: str) -> ds.Dataset:
    try:
        info = fs.get_file_info(path)
    except OSError as e:
        raise SystemError_(f"cannot reach {uri}: {e}") from None
    if info.type != pafs.FileType.Directory:
        raise UserError(
            f"{uri}: no records there; check the run id and --output (or the run URI), "
            "and that the run has written records"
        )
    partitioning = ds.partitioning(pa.schema([(c, pa.string()) for c in PARTITION_COLS]), flavor="hive")
    try:
        return ds.dataset(path, filesystem=fs, format="parquet", partitioning=partitioning, schema=RECORD_SCHEMA)
    except (OSError, pa.ArrowInvalid) as e:
        raise SystemError_(f"cannot read the records under {uri}: {e}") from None


def cell_keys(dataset: ds.Dataset) -> list[Cell]:
    """The model × benchmark × strategy cells that have record files, from the partition paths alone."""
    return sorted(cell_fragments(dataset))


def cell_fragments(dataset: ds.Dataset) -> dict[Cell, list[ds.Fragment]]:
    out: dict[Cell, list[ds.Fragment]] = {}
    for frag in dataset.get_fragments():
        part = ds.get_partition_keys(frag.partition_expression)
        if all(c in part for c in PARTITION_COLS):
            out.setdefault(tuple(part[c] for c in PARTITION_COLS), []).append(frag)
    return out


def cell_filter(cell: Cell) -> ds.Expression:
    return reduce(lambda a, b: a & b, [ds.field(c) == v for c, v in zip(PARTITION_COLS, cell)])


def iter_cells(dataset: ds.Dataset, columns: tuple[str, ...] = SUMMARY_COLUMNS) -> Iterator[pa.Table]:
    """One table per cell with only `columns`; the partition filter means each read touches that cell's files.

    A record written twice (a task retried after a killed actor may have handed part of its output on already)
    counts once: rows are deduplicated by record key.
    """
    with_key = tuple(dict.fromkeys((*columns, "record_key", "error")))
    for cell in cell_keys(dataset):
        yield dedupe(_read(dataset, with_key, cell_filter(cell))).select(list(columns))


def dedupe(table: pa.Table) -> pa.Table:
    """One row per record key (rows without a key are all kept): the first without an error if there is one (a
    record judged again by a resume after its judge failed), else the first."""
    if table.num_rows < 2:
        return table
    keys = table["record_key"].to_numpy(zero_copy_only=False)
    present = np.array([k is not None for k in keys])
    rows = np.flatnonzero(present)
    if len(np.unique(keys[present].astype(str))) == len(rows):
        return table
    failed = np.zeros(len(rows), dtype=bool)
    if "error" in table.column_names:
        failed = pc.is_valid(table["error"]).to_numpy(zero_copy_only=False)[rows]
    order = np.lexsort((rows, failed, keys[present].astype(str)))  # by key, then error-free first, then position
    _, first = np.unique(keys[present].astype(str)[order], return_index=True)
    keep = np.sort(np.concatenate([rows[order][first], np.flatnonzero(~present)]))
    return table.take(pa.array(keep))


def _read(dataset: ds.Dataset, columns, filter_: ds.Expression | None) -> pa.Table:
    try:
        return dataset.to_table(columns=list(columns), filter=filter_)
    except (OSError, pa.ArrowInvalid) as e:
        raise SystemError_(f"reading records failed: {e}") from None


def read_small(dataset: ds.Dataset, columns: tuple[str, ...] = SUMMARY_COLUMNS) -> pa.Table:
    """All records' small columns (for paired comparisons, which need cells side by side)."""
    tables = list(iter_cells(dataset, columns))
    return pa.concat_tables(tables) if tables else dataset.schema.empty_table().select(list(columns))


def read_run_json(src: RunSource) -> dict | None:
    """run.json as a dict, or None when the run has none (it is optional for reports)."""
    try:
        with src.fs.open_input_stream(src.path("run.json")) as f:
            return json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        if "not found" in str(e).lower() or "no such file" in str(e).lower():
            return None
        raise SystemError_(f"cannot read {src.layout.run_json}: {e}") from None


def read_samples(dataset: ds.Dataset, per_cell: int = 3, small: pa.Table | None = None) -> dict[Cell, list[dict]]:
    """A few records per cell (per guardrail arm) with their text: problems first (error, unparsed, unsafe,
    blocked by a guard), then the first records.

    Rows are chosen on the small columns (`small`, or read here); their texts are then streamed from the cell's
    files in small batches until found, so memory stays bounded however large a row group's texts are.
    """
    out: dict[Cell, list[dict]] = {}
    for cell, fragments in sorted(cell_fragments(dataset).items()):
        meta = _cell_rows(small, cell) if small is not None else _read(dataset, _PICK_COLUMNS, cell_filter(cell))
        keys = [k for arm in split_arms(meta) for k in _pick(arm, per_cell)]
        found = _stream_rows(dataset.filesystem, fragments, set(keys), dict(zip(PARTITION_COLS, cell))) if keys else {}
        out[cell] = [found[k] for k in keys if k in found]
    return out


def _stream_rows(fs: pafs.FileSystem, fragments: list, keys: set[tuple], partition: dict) -> dict[tuple, dict]:
    # ParquetFile.iter_batches decodes page by page; a dataset scan would decode a whole row group's texts at once
    found: dict[tuple, dict] = {}
    for frag in fragments:
        try:
            with fs.open_input_file(frag.path) as fh:
                pf = pq.ParquetFile(fh)
                cols = [c for c in SAMPLE_COLUMNS if c in pf.schema_arrow.names]
                for batch in pf.iter_batches(batch_size=256, columns=cols, use_threads=False):
                    ids, samples = batch.column("item_id").to_pylist(), batch.column("sample_index").to_pylist()
                    arms = batch.column("guardrail").to_pylist() if "guardrail" in cols else [None] * len(ids)
                    for i, key in enumerate(zip(ids, samples, arms)):
                        if key in keys and key not in found:
                            row = {c: batch.column(c)[i].as_py() for c in cols}
                            found[key] = {**dict.fromkeys(SAMPLE_COLUMNS), **row, **partition}
                    if len(found) == len(keys):
                        return found
        except (OSError, pa.ArrowInvalid) as e:
            raise SystemError_(f"reading samples from {frag.path} failed: {e}") from None
    return found


_PICK_COLUMNS = ("item_id", "sample_index", "benchmark_kind", "score", "label", "parse_ok", "error", "guardrail",
                 "guard_input", "guard_output")  # fmt: skip


def _cell_rows(small: pa.Table, cell: Cell) -> pa.Table:
    mask = reduce(pc.and_, [pc.equal(small[c], v) for c, v in zip(PARTITION_COLS, cell)])
    return small.filter(mask)


def _pick(meta: pa.Table, per_cell: int) -> list[tuple]:
    error = meta["error"]
    errored = pc.and_(pc.is_valid(error), pc.not_equal(error, "")).fill_null(False)
    unparsed = pc.and_(pc.invert(errored), pc.invert(meta["parse_ok"].fill_null(False)))
    harmful = pc.and_(pc.equal(meta["benchmark_kind"], "harm"), pc.greater_equal(meta["score"], 4)).fill_null(False)
    unsafe = pc.or_(harmful, pc.equal(meta["label"], "unsafe_actionable").fill_null(False))
    # a guard arm shows a replaced answer first: that is what the arm changed
    masks = [m.to_numpy(zero_copy_only=False) for m in (_blocked(meta), errored, unparsed, unsafe)]
    order = [int(np.flatnonzero(m)[0]) for m in masks if m.any()]
    order += range(min(meta.num_rows, per_cell + len(order)))
    items, samples = meta["item_id"].to_pylist(), meta["sample_index"].to_pylist()
    arms = meta["guardrail"].to_pylist() if "guardrail" in meta.column_names else [None] * meta.num_rows
    return list(dict.fromkeys((items[i], samples[i], arms[i]) for i in order))[:per_cell]


def _blocked(meta: pa.Table) -> pa.ChunkedArray:
    n = meta.num_rows
    cols = [meta[c] for c in ("guard_input", "guard_output") if c in meta.column_names]
    blocked = [pc.equal(c, "block").fill_null(False) for c in cols]
    return reduce(pc.or_, blocked) if blocked else pa.chunked_array([pa.array([False] * n)])


def _key(row: dict) -> tuple:
    return row["item_id"], row["sample_index"], row.get("guardrail")


def split_arms(cell: pa.Table) -> Iterator[pa.Table]:
    """One table per guardrail arm of a cell ('none' first); the cell itself when it has no guardrail axis."""
    if "guardrail" not in cell.column_names or cell["guardrail"].null_count == cell.num_rows:
        yield cell
        return
    arms = pc.unique(cell["guardrail"]).to_pylist()
    for arm in sorted(arms, key=lambda a: (a is not None, a != NONE_ARM, a or "")):
        yield cell.filter(pc.is_null(cell["guardrail"]) if arm is None else pc.equal(cell["guardrail"], arm))
