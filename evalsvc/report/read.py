"""Read a run's records (local folder or s3://) with pyarrow.dataset: Hive partitions, only the columns asked for.

Summaries go cell by cell over the small columns; the sample browser reads a few rows per cell with their text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from evalsvc.errors import SystemError_, UserError
from evalsvc.report.summary import DEFAULT_THRESHOLD, SUMMARY_COLUMNS, summarize_cells
from evalsvc.store.layout import RunLayout, resolve_run
from evalsvc.store.record import PARTITION_COLS, RECORD_SCHEMA
from evalsvc.store.uri import S3Conn, filesystem

TEXT_COLUMNS = ("messages", "response", "judge_raw")
SAMPLE_COLUMNS = (
    *PARTITION_COLS, "benchmark_kind", "item_id", "sample_index", "principle", "category", "aspect",
    "answer", "score", "label", "parse_ok", "error", *TEXT_COLUMNS,
)  # fmt: skip
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
    keys = set()
    for frag in dataset.get_fragments():
        part = ds.get_partition_keys(frag.partition_expression)
        if all(c in part for c in PARTITION_COLS):
            keys.add(tuple(part[c] for c in PARTITION_COLS))
    return sorted(keys)


def cell_filter(cell: Cell) -> ds.Expression:
    return reduce(lambda a, b: a & b, [ds.field(c) == v for c, v in zip(PARTITION_COLS, cell)])


def iter_cells(dataset: ds.Dataset, columns: tuple[str, ...] = SUMMARY_COLUMNS) -> Iterator[pa.Table]:
    """One table per cell with only `columns`; the partition filter means each read touches that cell's files."""
    for cell in cell_keys(dataset):
        yield _read(dataset, columns, cell_filter(cell))


def _read(dataset: ds.Dataset, columns, filter_: ds.Expression | None) -> pa.Table:
    try:
        return dataset.to_table(columns=list(columns), filter=filter_)
    except (OSError, pa.ArrowInvalid) as e:
        raise SystemError_(f"reading records failed: {e}") from None


def summarize_run(src: RunSource, *, threshold: float = DEFAULT_THRESHOLD) -> pa.Table:
    """The summary of a run, read cell by cell so memory is bounded by the largest cell's small columns."""
    return summarize_cells(iter_cells(records_dataset(src)), threshold=threshold)


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


def read_samples(dataset: ds.Dataset, per_cell: int = 3) -> dict[Cell, list[dict]]:
    """A few records per cell with their text: problems first (error, unparsed, unsafe), then the first records."""
    out: dict[Cell, list[dict]] = {}
    for cell in cell_keys(dataset):
        base = cell_filter(cell)
        picks: list[dict] = []
        for extra in (ds.field("error").is_valid(), ~ds.field("parse_ok") & ds.field("error").is_null(), _unsafe(), None):
            if len(picks) >= per_cell:
                break
            want = 1 if extra is not None else per_cell
            filt = base if extra is None else base & extra
            rows = dataset.head(want + len(picks), columns=list(SAMPLE_COLUMNS), filter=filt, batch_size=64).to_pylist()
            for r in rows:
                if len(picks) < per_cell and all(_key(r) != _key(p) for p in picks):
                    picks.append(r)
                    if extra is not None:
                        break
        out[cell] = picks
    return out


def _unsafe() -> ds.Expression:
    return (ds.field("score") >= 4) & (ds.field("benchmark_kind") == "harm") | (ds.field("label") == "unsafe_actionable")


def _key(row: dict) -> tuple:
    return row["item_id"], row["sample_index"]
