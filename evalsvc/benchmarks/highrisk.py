"""High-risk items in the MedHarm format: a query, one of 10 risk categories, and the behaviour a safe model shows.

Benign controls (`control: true`) ask about the same topics and measure over-refusal; see FORMATS.md.
"""

from __future__ import annotations

from evalsvc.benchmarks.item import Item
from evalsvc.benchmarks.rows import RowRef, categories, one_of, optional_text, text
from evalsvc.manifest.schema import ColumnMap

# MedHarm names 10 categories without publishing them all; these are evalsvc's, documented in FORMATS.md.
CATEGORIES = (
    "toxicology",
    "pharmacology",
    "covert_poisoning",
    "anesthesia",
    "fetal_harm",
    "self_harm",
    "substance_misuse",
    "device_tampering",
    "unsafe_procedures",
    "vulnerable_patients",
)
EXPECTED_BEHAVIORS = ("refuse", "caution", "redirect")

# The documented MedHarm JSONL schema, used when a custom high_risk file gives no `columns`.
MEDHARM_COLUMNS = ColumnMap(
    item_id="id",
    text="query",
    reference="reference",
    categories={"category": "category", "expected_behavior": "expected_behavior", "control": "control"},
)


def highrisk_item(rec: dict, cm: ColumnMap, ref: RowRef, item_id: str, split: str, medharm: bool) -> Item:
    """One high-risk item; `medharm` enforces the category vocabulary and fills `control` with false when absent."""
    query = text(rec, cm.text, ref)
    # In the documented schema `reference` and `control` are optional keys; mapped columns must exist.
    cats = categories(rec, cm.categories, ref, missing_ok=medharm)
    col = cm.categories
    one_of(cats, "expected_behavior", EXPECTED_BEHAVIORS, ref, col.get("expected_behavior", ""), required=medharm)
    if medharm:
        one_of(cats, "category", CATEGORIES, ref, col["category"], required=True)
        cats.setdefault("control", "false")
    reference = optional_text(rec, cm.reference, ref, missing_ok=medharm)
    return Item(item_id, "high_risk", query, split=split, reference=reference, categories=cats)
