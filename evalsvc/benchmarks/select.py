"""Narrowing a benchmark's items: `filters` keep items whose field is one of the allowed values, `select` keeps N of them.

Both keep the items' original order, and `sample` is seeded, so the same manifest always picks the same items.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from evalsvc.benchmarks.item import CATEGORY_FIELDS, Item
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Selection

FILTER_FIELDS = ("split", *CATEGORY_FIELDS)


def field_value(item: Item, field: str) -> str | None:
    return item.split if field == "split" else item.categories.get(field)


def apply_filters(items: list[Item], filters: dict[str, list[str]], bench: str) -> list[Item]:
    for field in filters:
        if field not in FILTER_FIELDS:
            raise UserError(
                f"benchmarks.{bench}.filters.{field}: unknown field; filter on one of {', '.join(FILTER_FIELDS)}"
            )
    if not filters:
        return items
    allowed = {field: set(values) for field, values in filters.items()}
    kept = [it for it in items if all(field_value(it, f) in vals for f, vals in allowed.items())]
    if not kept:
        present = {f: sorted({v for it in items if (v := field_value(it, f)) is not None}) for f in filters}
        seen = "; ".join(f"{f}: {', '.join(v) if v else '(no item has this field)'}" for f, v in present.items())
        raise UserError(f"benchmarks.{bench}.filters: no item matches; values present are {seen}")
    return kept


def apply_selection(items: list[Item], sel: Selection, bench: str) -> list[Item]:
    n = sel.limit if sel.limit is not None else sel.sample
    if n is None:
        return items
    if sel.per is None:
        picked = _pick(range(len(items)), n, sel, sel.seed)
    else:
        if sel.per not in FILTER_FIELDS:
            raise UserError(
                f"benchmarks.{bench}.select.per: unknown field {sel.per!r}; use one of {', '.join(FILTER_FIELDS)}"
            )
        groups: dict[str | None, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(field_value(it, sel.per), []).append(i)
        if list(groups) == [None]:
            raise UserError(
                f"benchmarks.{bench}.select.per: no item has a {sel.per!r} field; choose a field the items carry"
            )
        # Each group draws from its own Random seeded by (seed, value): a group's pick does not depend on which other
        # groups exist, and equal-sized groups do not pick the same positions. str seeds are stable across processes.
        picked = [i for value, idx in groups.items() for i in _pick(idx, n, sel, f"{sel.seed}/{sel.per}={value}")]
    return [items[i] for i in sorted(picked)]


def _pick(indices: Sequence[int], n: int, sel: Selection, seed: int | str) -> list[int]:
    if sel.limit is not None or n >= len(indices):
        return list(indices[:n])
    return random.Random(seed).sample(list(indices), n)
