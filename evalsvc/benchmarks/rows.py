"""Reading one benchmark record (a dict from a JSONL line, CSV row or Parquet row) into Item fields, with row-exact errors.

Each error names the benchmark, the file, the row and the column, and says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evalsvc.benchmarks.item import CATEGORY_FIELDS
from evalsvc.errors import UserError

MAX_FIELD_BYTES = 1_000_000  # a text field larger than this is a broken export, not a question
TRUE_WORDS = {"true", "1", "yes", "y"}
FALSE_WORDS = {"false", "0", "no", "n", ""}


@dataclass(frozen=True)
class RowRef:
    """Where a record came from: enough to point a user at the exact cell to fix."""

    bench: str
    file: str
    label: str  # "line 7" (JSONL) or "row 7" (CSV, Parquet; 1-based, header excluded)

    def error(self, column: str | None, problem: str) -> UserError:
        col = f", column {column!r}" if column else ""
        return UserError(f"benchmarks.{self.bench}: {self.file} {self.label}{col}: {problem}")


def check_size(value: Any, column: str, ref: RowRef) -> None:
    # utf-8 needs at most 4 bytes a character: only long strings are worth encoding to measure
    if isinstance(value, str) and len(value) * 4 > MAX_FIELD_BYTES and len(value.encode("utf-8")) > MAX_FIELD_BYTES:
        raise ref.error(
            column, f"{len(value.encode('utf-8')):,} bytes is over the 1 MB limit of a text field; shorten it"
        )


def get(rec: dict, column: str, ref: RowRef, optional: bool = False) -> Any:
    if column not in rec:
        if optional:
            return None
        raise ref.error(
            column, f"missing (the row has {', '.join(map(repr, rec)) or 'no columns'}); add it or fix `columns`"
        )
    value = rec[column]
    check_size(value, column, ref)
    return value


def text(rec: dict, column: str, ref: RowRef) -> str:
    value = get(rec, column, ref)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ref.error(column, f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise ref.error(column, "empty; every item needs its text")
    return value


def optional_text(rec: dict, column: str | None, ref: RowRef, missing_ok: bool) -> str | None:
    """A text value that may be null/empty in a row; the column itself must exist unless `missing_ok`."""
    if column is None:
        return None
    value = get(rec, column, ref, optional=missing_ok)
    if value is None or (isinstance(value, float) and value != value):  # NaN: an empty Parquet/pandas cell
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ref.error(column, f"expected text, got {type(value).__name__}")
    return value.strip() or None


def categories(rec: dict, mapping: dict[str, str], ref: RowRef, missing_ok: bool) -> dict[str, str]:
    out = {}
    for field, column in mapping.items():
        value = optional_text(rec, column, ref, missing_ok)
        if value is None:
            continue
        out[field] = boolean(value, column, ref) if field == "control" else value
    return out


def boolean(value: str, column: str, ref: RowRef) -> str:
    low = value.strip().lower()
    if low in TRUE_WORDS:
        return "true"
    if low in FALSE_WORDS:
        return "false"
    raise ref.error(column, f"{value!r} is not a boolean: use true or false")


def one_of(
    cats: dict[str, str], field: str, allowed: tuple[str, ...], ref: RowRef, column: str, required: bool
) -> None:
    """Check (and canonicalise the case of) a category whose vocabulary downstream code relies on."""
    value = cats.get(field)
    if value is None:
        if required:
            raise ref.error(column, f"missing {field}: use one of {', '.join(allowed)}")
        return
    match = {a.lower(): a for a in allowed}.get(value.strip().lower())
    if match is None:
        raise ref.error(column, f"{value!r} is not a valid {field}: use one of {', '.join(allowed)}")
    cats[field] = match


def check_category_fields(bench: str, mapping: dict[str, str]) -> None:
    for field in mapping:
        if field not in CATEGORY_FIELDS:
            raise UserError(
                f"benchmarks.{bench}.columns.categories.{field}: not a record field; use one of {', '.join(CATEGORY_FIELDS)}"
            )
