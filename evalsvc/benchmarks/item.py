"""The one item schema every benchmark loader yields: a request or question plus its category fields.

Items are plain frozen dataclasses; `CATEGORY_FIELDS` are the optional per-item labels records carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalsvc.store.record import CATEGORY_FIELDS
from evalsvc.store.row import BenchmarkKind as Kind

__all__ = ["CATEGORY_FIELDS", "Item", "Kind"]


@dataclass(frozen=True)
class Item:
    item_id: str  # stable across runs: derived from the file and row, never from load order alone
    kind: Kind  # harm: judged 1-5; mcq: parsed answer letter; high_risk: behaviour label; rubric: criteria graded
    text: str  # the request (harm, high_risk), the question stem (mcq) or the last user turn (rubric)
    split: str = "test"
    options: dict[str, str] | None = None  # mcq: letter -> option text, letters in order
    answer: str | None = None  # mcq: correct letter
    reference: str | None = None  # a reference (safe) response, when the data has one
    categories: dict[str, str] = field(default_factory=dict)  # subset of CATEGORY_FIELDS -> value
    conversation: list[dict] | None = None  # rubric: the {role, content} turns as given, the user's last
    criteria: list[dict] | None = None  # rubric: {criterion_id, criterion, points, tags} in file order
    tags: list[str] | None = None  # rubric: the example's own tags (theme:*, …)
