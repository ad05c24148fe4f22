"""Rubric benchmarks (HealthBench format) in the summary: the score per `axis:*` criterion tag and per `theme:*`
example tag, and how many criteria were graded and failed (pure functions over a cell's Arrow table).

An axis score re-scores each example on its criteria with that tag; a theme row takes the examples with that tag.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from evalsvc.analysis.metrics import Rows

AXIS, THEME = "axis", "theme"  # group_field of the rows; group_value is the tag without its prefix
COUNT_FIELDS = [("n_criteria", pa.int64()), ("n_criteria_failed", pa.int64()), ("criteria_fail_rate", pa.float64())]


@dataclass(frozen=True)
class Criteria:
    """A cell's criteria flattened: one entry per criterion of every record."""

    record: np.ndarray  # index of the record the criterion belongs to
    points: np.ndarray
    met: np.ndarray  # 1.0 met, 0.0 not met, NaN when its grading failed
    tags: list[set[str]]

    @property
    def graded(self) -> np.ndarray:
        return ~np.isnan(self.met)


def flatten(cell: pa.Table) -> Criteria:
    if "criteria" not in cell.column_names:
        return Criteria(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [])
    col = cell["criteria"].combine_chunks() if cell.num_rows else pa.array([], cell.schema.field("criteria").type)
    if col.null_count == len(col):
        return Criteria(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [])
    flat = pc.list_flatten(col)
    record = pc.list_parent_indices(col).to_numpy(zero_copy_only=False).astype(np.int64)
    points = flat.field("points").to_numpy(zero_copy_only=False).astype(float)
    met = flat.field("met").cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float)
    tags = [set(t or ()) for t in flat.field("tags").to_pylist()]
    return Criteria(record, points, met, tags)


def scores(c: Criteria, n_records: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Per record: met points ÷ positive points over its graded criteria in `mask`; NaN where none is positive.

    The vectorised twin of judge.criteria.example_score (tests hold the two to the same values)."""
    keep = c.graded if mask is None else c.graded & mask
    met = keep & (c.met == 1.0)
    num = np.bincount(c.record[met], weights=c.points[met], minlength=n_records)
    pos = keep & (c.points > 0)
    den = np.bincount(c.record[pos], weights=c.points[pos], minlength=n_records)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def counts(c: Criteria, records: np.ndarray | None = None, mask: np.ndarray | None = None) -> dict:
    """Criteria sent to the grader and those whose grading failed, over the records (bool mask) and criteria mask."""
    keep = np.ones(len(c.points), dtype=bool) if mask is None else mask.copy()
    if records is not None and len(c.record):
        keep &= records[c.record]
    n, failed = int(keep.sum()), int((keep & ~c.graded).sum())
    return {"n_criteria": n, "n_criteria_failed": failed, "criteria_fail_rate": failed / n if n else None}


def tag_values(tags: list[set[str]] | list[list[str]], prefix: str) -> list[str]:
    """The values of `prefix:value` tags, sorted."""
    head = f"{prefix}:"
    return sorted({t[len(head) :] for ts in tags for t in ts if t.startswith(head) and len(t) > len(head)})


def groups(cell: pa.Table, rows: Rows) -> Iterator[tuple[str, str, Rows, np.ndarray, dict]]:
    """(field, value, rows, record mask, criteria counts) per theme (example tag) and per axis (criterion tag).

    A theme row holds the records of the examples with that tag, scored as overall. An axis row holds the records
    with a positive-points criterion of that axis (HealthBench scores a tag only where points can be earned), each
    re-scored on its criteria of that axis; one whose positive axis criteria all failed counts as unparsed there.
    An axis row's criteria counts cover every criterion with the tag. Records without criteria (a failed
    generation) join theme rows only.
    """
    c = flatten(cell)
    n = cell.num_rows
    example_tags = cell["example_tags"].to_pylist() if "example_tags" in cell.column_names else [None] * n
    for value in tag_values([t or () for t in example_tags], THEME):
        mask = np.array([f"{THEME}:{value}" in (t or ()) for t in example_tags], dtype=bool)
        yield THEME, value, rows.subset(mask), mask, counts(c, records=mask)
    for value in tag_values(c.tags, AXIS):
        in_axis = np.array([f"{AXIS}:{value}" in t for t in c.tags], dtype=bool)
        mask = np.zeros(n, dtype=bool)
        mask[c.record[in_axis & (c.points > 0)]] = True
        if not mask.any():  # an axis of penalties only: no example can earn points on it
            continue
        axis_score = scores(c, n, in_axis)
        sub = rows.subset(mask)
        sub = dataclasses.replace(sub, score=axis_score[mask], scored=~sub.error & ~np.isnan(axis_score[mask]))
        yield AXIS, value, sub, mask, counts(c, mask=in_axis)
