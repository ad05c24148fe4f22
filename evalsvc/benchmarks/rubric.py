"""Rubric benchmarks in the HealthBench format: a conversation for the model to continue, graded by its own criteria.

One JSON object a line (FORMATS.md); every problem of a file is reported at once, each naming file, line and field.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import PurePosixPath
from typing import Any

from evalsvc.benchmarks.item import Item
from evalsvc.benchmarks.rows import MAX_FIELD_BYTES, RowRef
from evalsvc.errors import UserError

ROLES = ("system", "user", "assistant")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
MAX_PROBLEMS = 50  # lines of one error; the rest are counted (a wrong file would otherwise print thousands)


class _Problems:
    """The problems of one row, each a line naming file, line and field."""

    def __init__(self, ref: RowRef):
        self.ref, self.lines = ref, []

    def add(self, field: str | None, problem: str) -> None:
        self.lines.append(self.ref.error(field, problem).message)


def load_rubric_file(bench: str, uri: str, data: bytes, split: str) -> list[Item]:
    """The examples of a HealthBench-format JSONL file, or one UserError listing every problem in it."""
    if PurePosixPath(uri).suffix.lower() not in JSONL_SUFFIXES:
        raise UserError(f"benchmarks.{bench}.path: {uri}: format rubric reads JSONL (one example a line, the "
                        "HealthBench layout); give a .jsonl file")  # fmt: skip
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise UserError(f"benchmarks.{bench}: {uri} line {line}: not UTF-8; save the file as UTF-8") from None
    items: list[Item] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    stem = PurePosixPath(uri).stem
    lines = [(n, line) for n, line in enumerate(content.split("\n"), start=1) if line.strip()]
    for index, (n, line) in enumerate(lines):
        ref = RowRef(bench, uri, f"line {n}")
        p = _Problems(ref)
        item = _example(line, ref, p, f"{stem}/{index:05d}", split)
        if item is not None and item.item_id in seen:
            p.add("prompt_id", f"duplicate id {item.item_id!r} (first at {seen[item.item_id]}); ids must be unique")
        if p.lines:
            problems.extend(p.lines)
        elif item is not None:
            seen[item.item_id] = ref.label
            items.append(item)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - MAX_PROBLEMS} more problems in {uri}")
        if len(problems) == 1:
            raise UserError(problems[0])
        raise UserError(f"benchmarks.{bench}: {uri} has {len(problems)} problems; fix the rows below", shown)
    if not items:
        raise UserError(f"benchmarks.{bench}: {uri} has no examples; add rows or point `path` at the right file")
    return items


def _example(line: str, ref: RowRef, p: _Problems, default_id: str, split: str) -> Item | None:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        p.add(None, f"not valid JSON ({e.msg} at column {e.colno}); one JSON object per line")
        return None
    if not isinstance(rec, dict):
        p.add(None, f"expected a JSON object, got {type(rec).__name__}")
        return None
    turns = _conversation(rec, p)
    criteria = _criteria(rec, p)
    tags = _tags(rec.get("example_tags"), "example_tags", p)
    item_id = _item_id(rec, p) or default_id
    if p.lines or turns is None or criteria is None:
        return None
    reference = _reference(rec.get("ideal_completions_data"))
    return Item(item_id, "rubric", turns[-1]["content"], split=split, reference=reference, conversation=turns,
                criteria=criteria, tags=tags)  # fmt: skip


def _conversation(rec: dict, p: _Problems) -> list[dict] | None:
    if "prompt" not in rec:
        p.add("prompt", "missing: the conversation, a list of {role, content} turns ending with the user's")
        return None
    turns = rec["prompt"]
    if not isinstance(turns, list):
        p.add("prompt", f"expected a list of {{role, content}} turns, got {type(turns).__name__}")
        return None
    if not turns:
        p.add("prompt", "empty conversation: give at least one user turn")
        return None
    out = []
    for i, turn in enumerate(turns):
        where = f"prompt[{i}]"
        if not isinstance(turn, dict):
            p.add(where, f"expected a {{role, content}} object, got {type(turn).__name__}")
            continue
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            p.add(f"{where}.role", f"{role!r} is not a role: use one of {', '.join(ROLES)}")
        elif role == "system" and i > 0:
            p.add(f"{where}.role", "a system turn may only come first")
        if not isinstance(content, str) or not content.strip():
            p.add(f"{where}.content", "missing or empty: every turn needs its text")
        elif len(content) * 4 > MAX_FIELD_BYTES and len(content.encode("utf-8")) > MAX_FIELD_BYTES:
            p.add(f"{where}.content", "over the 1 MB limit of a text field; shorten it")
        out.append({"role": role, "content": content})
    last = turns[-1].get("role") if isinstance(turns[-1], dict) else None
    if last in ROLES and last != "user":
        p.add(f"prompt[{len(turns) - 1}].role", f"the last turn is the {last}'s: a conversation must end with the "
                                                "user's turn for the model to answer")  # fmt: skip
    return out


def _criteria(rec: dict, p: _Problems) -> list[dict] | None:
    if "rubrics" not in rec:
        p.add("rubrics", "missing: the example's criteria, a list of {criterion, points, tags}")
        return None
    raw = rec["rubrics"]
    if not isinstance(raw, list) or not raw:
        got = "an empty list" if isinstance(raw, list) else type(raw).__name__
        p.add("rubrics", f"expected a non-empty list of {{criterion, points, tags}}, got {got}")
        return None
    out = []
    for i, c in enumerate(raw):
        where = f"rubrics[{i}]"
        if not isinstance(c, dict):
            p.add(where, f"expected a {{criterion, points, tags}} object, got {type(c).__name__}")
            continue
        text, points = c.get("criterion"), _points(c, where, p)
        if not isinstance(text, str) or not text.strip():
            p.add(f"{where}.criterion", "missing or empty: say what the response should (or should not) do")
            continue
        tags = _tags(c.get("tags"), f"{where}.tags", p)
        if points is not None:
            out.append({"criterion_id": criterion_id(i, text, points), "criterion": text, "points": points,
                        "tags": tags})  # fmt: skip
    if out and len(out) == len(raw) and not any(c["points"] > 0 for c in out):
        p.add("rubrics", "no criterion has positive points: an example's score is met points ÷ positive points; "
                         "add the behaviour the response should show")  # fmt: skip
    return out


def _points(c: dict, where: str, p: _Problems) -> float | None:
    if "points" not in c:
        p.add(f"{where}.points", "missing: a criterion without points cannot be scored; give a number (e.g. 5 or -3)")
        return None
    v: Any = c["points"]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        p.add(f"{where}.points", f"{v!r} is not a number: write points as a number (e.g. 5 or -3), not text")
        return None
    return float(v)


def _tags(v: Any, field: str, p: _Problems) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
        p.add(field, "expected a list of text tags (e.g. [\"axis:accuracy\"])")
        return []
    return list(dict.fromkeys(t.strip() for t in v if t.strip()))


def _item_id(rec: dict, p: _Problems) -> str | None:
    v = rec.get("prompt_id")
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        p.add("prompt_id", f"expected text, got {type(v).__name__}")
        return None
    return str(v).strip()


def _reference(v: Any) -> str | None:
    """The physician-written ideal completion, when the row has one (kept as the record's reference)."""
    if isinstance(v, dict) and isinstance(v.get("ideal_completion"), str) and v["ideal_completion"].strip():
        return v["ideal_completion"]
    return None


def criterion_id(index: int, text: str, points: float) -> str:
    """Position in the example's rubric plus a hash of text and points: a changed criterion gets a new id."""
    h = hashlib.sha256(json.dumps([text, float(points)]).encode("utf-8")).hexdigest()[:8]
    return f"{index:02d}-{h}"


def rubric_context(item: Item) -> str:
    """What the judge stage needs of an example, as one JSON text carried along with each generation."""
    return json.dumps({"conversation": item.conversation, "criteria": item.criteria, "tags": item.tags or []},
                      ensure_ascii=False)  # fmt: skip
