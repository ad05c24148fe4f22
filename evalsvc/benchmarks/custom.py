"""Benchmark files a user brings (JSONL, CSV, Parquet; local or s3://), mapped to items by the manifest's `columns`.

Without `columns` a file follows the documented schema of its format (FORMATS.md); every problem names file, row, column.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import PurePosixPath

from evalsvc.benchmarks.highrisk import MEDHARM_COLUMNS, highrisk_item
from evalsvc.benchmarks.item import Item
from evalsvc.benchmarks.mcq import MEDGUARD_COLUMNS, check_columns, mcq_item
from evalsvc.benchmarks.rows import MAX_FIELD_BYTES, RowRef, categories, check_category_fields, optional_text, text
from evalsvc.errors import SystemError_, UserError
from evalsvc.manifest.schema import ColumnMap
from evalsvc.store.uri import S3Conn, filesystem

HARM_COLUMNS = ColumnMap(
    item_id="id",
    text="request",
    reference="reference",
    categories={"principle": "principle", "source": "source", "category": "category"},
)
DEFAULT_COLUMNS = {"harm": HARM_COLUMNS, "mcq": MEDGUARD_COLUMNS, "high_risk": MEDHARM_COLUMNS}
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

MAX_FILE_BYTES = 4 * 1024**3  # items are held in memory: a larger file is better split into several benchmarks
# sha256 of files read, keyed by (filesystem, path, size, mtime): benchmark_version after load_items reads nothing again.
_DIGESTS: dict[tuple, str] = {}


def load_file(
    bench: str, uri: str, fmt: str, columns: ColumnMap | None, split: str, s3: S3Conn | None = None
) -> list[Item]:
    """Items of one benchmark file; `columns=None` means the documented schema of `fmt`."""
    if fmt == "rubric":  # the HealthBench layout is nested (turns, criteria): no column mapping applies
        from evalsvc.benchmarks.rubric import load_rubric_file

        return load_rubric_file(bench, uri, read_bytes(bench, uri, s3), split)
    documented = columns is None
    cm = DEFAULT_COLUMNS[fmt] if documented else columns
    check_category_fields(bench, cm.categories)
    if fmt == "mcq":
        check_columns(bench, cm)
    data = read_bytes(bench, uri, s3)
    items: list[Item] = []
    seen: dict[str, str] = {}
    stem = PurePosixPath(uri).stem
    for index, (ref, rec) in enumerate(_records(bench, uri, data, cm, documented)):
        item_id = _item_id(rec, cm, ref, documented) or f"{stem}/{index:05d}"
        if item_id in seen:
            raise ref.error(cm.item_id, f"duplicate item id {item_id!r} (first at {seen[item_id]}); ids must be unique")
        seen[item_id] = ref.label
        items.append(_item(fmt, rec, cm, ref, item_id, split, documented))
    if not items:
        raise UserError(f"benchmarks.{bench}: {uri} has no items; add rows or point `path` at the right file")
    return items


def file_digest(bench: str, uri: str, s3: S3Conn | None = None) -> str:
    """sha256 of the file's bytes, reusing the digest of the last read while size and mtime are unchanged."""
    fs, path = filesystem(uri, s3)
    try:
        info = fs.get_file_info(path)
    except OSError as e:
        raise SystemError_(f"benchmarks.{bench}.path: cannot read {uri}: {e}") from None
    cached = _DIGESTS.get(_digest_key(fs, path, info, s3))
    return cached or hashlib.sha256(read_bytes(bench, uri, s3)).hexdigest()


def read_bytes(bench: str, uri: str, s3: S3Conn | None) -> bytes:
    import pyarrow.fs as pafs

    fs, path = filesystem(uri, s3)
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise UserError(
                f"benchmarks.{bench}.path: {uri}: no such file; check the path (relative paths start at the current folder)"
            )
        if info.type != pafs.FileType.File:
            raise UserError(f"benchmarks.{bench}.path: {uri} is a folder, not a file; name the file itself")
        if info.size is not None and info.size > MAX_FILE_BYTES:
            raise UserError(f"benchmarks.{bench}.path: {uri} is {info.size:,} bytes, over {MAX_FILE_BYTES:,}; split it")
        with fs.open_input_stream(path) as f:
            data = f.read()
    except OSError as e:
        raise SystemError_(f"benchmarks.{bench}.path: cannot read {uri}: {e}") from None
    _DIGESTS[_digest_key(fs, path, info, s3)] = hashlib.sha256(data).hexdigest()
    return data


def _digest_key(fs, path: str, info, s3: S3Conn | None) -> tuple:
    endpoint = s3.endpoint_url if s3 is not None and fs.type_name == "s3" else None
    return (fs.type_name, endpoint, path, info.size, info.mtime_ns)


def _records(bench: str, uri: str, data: bytes, cm: ColumnMap, documented: bool) -> Iterator[tuple[RowRef, dict]]:
    suffix = PurePosixPath(uri).suffix.lower()
    kind = SUFFIXES.get(suffix)
    if kind is None:
        raise UserError(
            f"benchmarks.{bench}.path: {uri}: unknown file type {suffix or '(none)'}; use .jsonl, .csv or .parquet"
        )
    if kind == "parquet":
        return _parquet_records(bench, uri, data, cm, documented)
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(
            f"benchmarks.{bench}: {uri} line {line}: not UTF-8 (byte {data[e.start]:#04x} at offset {e.start}); save the file as UTF-8"
        ) from None
    if kind == "jsonl":
        return _jsonl_records(bench, uri, content)
    return _csv_records(bench, uri, content, cm, documented)


def _jsonl_records(bench: str, uri: str, content: str) -> Iterator[tuple[RowRef, dict]]:
    for n, line in enumerate(content.split("\n"), start=1):
        if not line.strip():
            continue
        ref = RowRef(bench, uri, f"line {n}")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ref.error(None, f"not valid JSON ({e.msg} at column {e.colno}); one JSON object per line") from None
        if not isinstance(rec, dict):
            raise ref.error(None, f"expected a JSON object, got {type(rec).__name__}")
        yield ref, rec


def _csv_records(bench: str, uri: str, content: str, cm: ColumnMap, documented: bool) -> Iterator[tuple[RowRef, dict]]:
    # The csv module refuses fields over 128 KiB by default; allow more so the 1 MB field check names the row.
    csv.field_size_limit(max(csv.field_size_limit(), 8 * MAX_FIELD_BYTES))
    reader = csv.DictReader(io.StringIO(content, newline=""), strict=True)
    header = _header(bench, uri, reader)
    _check_header(bench, uri, header, cm, documented)
    n = 0
    try:
        for n, row in enumerate(reader, start=1):
            ref = RowRef(bench, uri, f"row {n}")
            if None in row:
                raise ref.error(
                    None,
                    f"{len(header) + len(row[None])} fields but the header has {len(header)}; quote fields that contain commas",
                )
            if None in row.values():
                have = sum(v is not None for v in row.values())
                raise ref.error(None, f"{have} fields but the header has {len(header)}; fill every column")
            yield ref, row
    except csv.Error as e:
        raise UserError(f"benchmarks.{bench}: {uri} row {n + 1}: not valid CSV ({e})") from None


def _header(bench: str, uri: str, reader: csv.DictReader) -> list[str]:
    try:
        header = reader.fieldnames
    except csv.Error as e:
        raise UserError(f"benchmarks.{bench}: {uri}: not valid CSV ({e})") from None
    if not header:
        raise UserError(f"benchmarks.{bench}: {uri} is empty: a CSV needs a header row and at least one row")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise UserError(
            f"benchmarks.{bench}: {uri}: column {dup[0]!r} appears more than once in the header; rename one"
        )
    return list(header)


def _parquet_records(
    bench: str, uri: str, data: bytes, cm: ColumnMap, documented: bool
) -> Iterator[tuple[RowRef, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as e:
        raise UserError(f"benchmarks.{bench}: {uri}: not a readable Parquet file ({e})") from None
    _check_header(bench, uri, table.column_names, cm, documented)
    for n, rec in enumerate(table.to_pylist(), start=1):
        yield RowRef(bench, uri, f"row {n}"), rec


def _check_header(bench: str, uri: str, header: list[str], cm: ColumnMap, documented: bool) -> None:
    """Tabular files name their columns up front: report a missing one once, with the mapping field to fix."""
    needed = {"text": cm.text, "answer": cm.answer, "options": cm.options}
    needed.update({f"option_columns.{k}": v for k, v in (cm.option_columns or {}).items()})
    if not documented:  # in the documented schemas id, reference and most categories are optional keys
        needed.update({"item_id": cm.item_id, "reference": cm.reference})
        needed.update({f"categories.{k}": v for k, v in cm.categories.items()})
    for field, column in needed.items():
        if column is not None and column not in header:
            raise UserError(
                f"benchmarks.{bench}: {uri}: no column {column!r} (columns: {', '.join(header)}); "
                f"fix benchmarks.{bench}.columns.{field}"
            )


def _item_id(rec: dict, cm: ColumnMap, ref: RowRef, documented: bool) -> str | None:
    if cm.item_id is None or (documented and not rec.get(cm.item_id)):
        return None  # the caller falls back to file stem + row index
    return text(rec, cm.item_id, ref).strip()


def _item(fmt: str, rec: dict, cm: ColumnMap, ref: RowRef, item_id: str, split: str, documented: bool) -> Item:
    if fmt == "mcq":
        return mcq_item(rec, cm, ref, item_id, split, medguard=documented)
    if fmt == "high_risk":
        return highrisk_item(rec, cm, ref, item_id, split, medharm=documented)
    cats = categories(rec, cm.categories, ref, missing_ok=documented)
    reference = optional_text(rec, cm.reference, ref, missing_ok=documented)
    return Item(item_id, "harm", text(rec, cm.text, ref), split=split, reference=reference, categories=cats)
