"""MedSafetyBench items: the test/train CSVs (GPT-4 and Llama-2 sources) and the 74k Llama-3 requests, one per line.

Category k of an upstream file is AMA principle k; ids are built from split, source, principle and row so they never move.
"""

from __future__ import annotations

import csv
import io

from evalsvc.benchmarks.fetch import Location, read_verified
from evalsvc.benchmarks.item import Item
from evalsvc.benchmarks.registry import MEDSAFETYBENCH, split_files
from evalsvc.errors import SystemError_

CSV_HEADER = ["", "harmful_medical_request", "safe_response"]


def load_msb(split: str, loc: Location) -> list[Item]:
    items: list[Item] = []
    for path, source, principle in split_files(split):
        data = read_verified(MEDSAFETYBENCH, loc, path)
        # One categories dict per file, shared by its items: the llama3 split has 74k items and items are frozen.
        cats = {"principle": str(principle), "source": source}
        prefix = f"msb/{split}/{source}/p{principle}/"
        if source == "llama3":
            items.extend(_txt_items(data, prefix, cats))
        else:
            items.extend(_csv_items(data, prefix, split, cats, loc.root / path))
    return items


def _csv_items(data: bytes, prefix: str, split: str, cats: dict[str, str], where: object) -> list[Item]:
    rows = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(rows, None)
    if header != CSV_HEADER:
        raise SystemError_(f"{where}: header {header} is not the upstream {CSV_HEADER}")
    items = []
    for n, (index, request, safe) in enumerate(rows):
        # The unnamed first column is the upstream row index (0..n-1); the id uses it so it matches the file.
        row = int(index) if index.isdigit() else n
        items.append(Item(f"{prefix}{row:04d}", "harm", request, split=split, reference=safe, categories=cats))
    return items


def _txt_items(data: bytes, prefix: str, cats: dict[str, str]) -> list[Item]:
    lines = data.decode("utf-8").split("\n")
    # Blank lines (only the final newline in the pinned files) are skipped but keep their number, so ids stay put.
    return [
        Item(f"{prefix}{n:05d}", "harm", line, split="llama3", categories=cats)
        for n, line in enumerate(lines)
        if line.strip()
    ]
