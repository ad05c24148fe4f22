"""Reuse what earlier runs computed: cached generations skip the engine, matching judgements skip the judge.

A cached record is matched by record key (same model source+revision, output-affecting engine args, prompt,
sampling, sample index); its identity columns are rewritten to this run's names, its text is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from evalsvc.plan.grid import Plan
from evalsvc.store.index import JUDGE_ERROR, KeyIndex
from evalsvc.store.row import GENERATION_COLUMNS, JUDGE_COLUMNS, NESTED_JUDGE_COLUMNS, PLAN_COLUMNS
from evalsvc.store.uri import S3Conn, filesystem


@dataclass
class ReusePlan:
    """Per model: which of its keys are already in this run (skip), and which come from the cache."""

    skip: set[str] = field(default_factory=set)  # generations whose records (every arm) this run already has
    arms_done: set[str] = field(default_factory=set)  # arm records this run has of generations still to process
    cached: set[str] = field(default_factory=set)  # a generation exists in an earlier run
    new_generations: dict[str, int] = field(default_factory=dict)  # engine -> rows still to generate
    skipped_by_cell: dict[str, int] = field(default_factory=dict)  # cell -> records already in this run
    skipped_criteria: dict[str, int] = field(default_factory=dict)  # cell -> rubric criteria those records graded
    cached_by_engine: dict[str, int] = field(default_factory=dict)  # engine -> rows served from the cache
    reused_generations: int = 0
    reused_judgements: int = 0
    judge_calls: int = 0  # judge calls this run still has to make (a rubric record: one per criterion)
    guarded_rows: int = 0  # records of guarded arms still to write (each needs the guard)
    from_this_run: int = 0  # generations re-read from this run's own unguarded records (their other arms are missing)
    sources: list[str] = field(default_factory=list)  # records folders of earlier runs the cache reads
    judge_sig: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # kind -> (judge, rubric id, version)

    def report(self) -> dict:
        """The reuse figures recorded in run.json."""
        return {
            "already_in_run": sum(self.skipped_by_cell.values()),
            "generations": sum(self.new_generations.values()),
            "reused_generations": self.reused_generations,
            "judge_calls": self.judge_calls,
            "reused_judgements": self.reused_judgements,
            "cache_sources": len(self.sources),
        }


def plan_reuse(plan: Plan, done: KeyIndex, cache: KeyIndex, judge_sig: dict[str, tuple[str, str, str]]) -> ReusePlan:
    """Walk every row key once in the driver (no rows kept) and sort it into skip / cached / new.

    With guardrail arms a generation is skipped only when every arm's record is done; its done arms go to
    `arms_done` (the guard stage drops them). Only the unguarded generation comes from the cache."""
    out = ReusePlan()
    if not done.present and not cache.generated:  # nothing to reuse: no need to walk the rows
        for engine, models in plan.engines().items():
            out.new_generations[engine] = sum(c.generations for c in plan.generation_cells() if c.model in models)
            out.cached_by_engine[engine] = 0
        out.judge_calls = sum(c.judge_calls for c in plan.cells)
        out.guarded_rows = sum(c.generations for c in plan.cells if c.guard_mode)
        return out
    for engine, models in plan.engines().items():
        new = cached = 0
        for name in models:
            for row in plan.rows(name):
                key, kind = row["record_key"], row["benchmark_kind"]
                todo = _arms_todo(row, plan.arms, done, out)
                if not todo:
                    out.skip.add(key)
                    continue
                out.guarded_rows += sum(a is not None and a.guarded for a in todo)
                per_record = row["n_criteria"] if kind == "rubric" else 0 if kind == "mcq" else 1
                judged = len(todo) * per_record
                # A generation whose unguarded record this run has is re-read, so every arm guards the same answer.
                own = key in done.generated
                out.from_this_run += own
                if key in cache.generated or own:
                    out.cached.add(key)
                    cached += 1
                    unguarded = any(a is None or not a.guarded for a in todo)
                    if judged and unguarded and cache.judged.get(key) == judge_sig.get(kind):
                        out.reused_judgements += 1
                        judged -= per_record
                out.judge_calls += judged
                new += key not in cache.generated and not own
        out.new_generations[engine] = new
        out.cached_by_engine[engine] = cached
        out.reused_generations += cached
    return out


def _arms_todo(row: dict, arms: list, done: KeyIndex, out: ReusePlan) -> list:
    """The arms (None: no guardrail axis) whose record of this generation is missing; counts the done ones."""
    from evalsvc.plan.arms import arm_records

    records = arm_records(row, arms)
    todo = []
    for arm, key, cid in records:
        if key in done.present:
            out.skipped_by_cell[cid] = out.skipped_by_cell.get(cid, 0) + 1
            out.skipped_criteria[cid] = out.skipped_criteria.get(cid, 0) + row.get("n_criteria", 0)
        else:
            todo.append(arm)
    if todo and len(todo) < len(records):
        out.arms_done.update(key for _, key, _ in records if key in done.present)
    return todo


class CacheJoin:
    """Ray Data callable class: rows of cached keys → engine-output rows carrying the cached generation
    (and the cached judgement when judge model and rubric version match)."""

    def __init__(self, sources: list[str], conn: S3Conn | None, judge_sig: dict[str, tuple[str, str, str]]):
        self.sources, self.conn, self.judge_sig = sources, conn, judge_sig

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        found = self._lookup([r["record_key"] for r in rows])
        out = []
        for row in rows:
            rec = found[row["record_key"]]
            new = {k: row.get(k) for k in PLAN_COLUMNS}
            new.update({k: rec.get(k) for k in GENERATION_COLUMNS})
            new["error"] = None
            sig = (rec.get("judge_model") or "", rec.get("rubric_id") or "", rec.get("rubric_version") or "")
            reuse = row["benchmark_kind"] != "mcq" and rec.get("rubric_id") and sig == self.judge_sig.get(row["benchmark_kind"])
            reuse = reuse and _same_criteria(row, rec)
            new["reused_judgement"] = bool(reuse)
            for k in JUDGE_COLUMNS:
                value = rec.get(k) if reuse else None
                new[f"cached_{k}"] = json.dumps(value) if k in NESTED_JUDGE_COLUMNS and value is not None else value
            out.append(new)
        return pa.Table.from_pylist(out)

    def _lookup(self, keys: list[str]) -> dict[str, dict]:
        wanted = pa.array(sorted(set(keys)))
        found: dict[str, dict] = {}
        for uri in self.sources:
            fs, path = filesystem(uri, self.conn)
            dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
            # records written before a column existed (judge_votes) lack it: rec.get() then gives None
            names = dict.fromkeys(("record_key", *GENERATION_COLUMNS, *JUDGE_COLUMNS))
            cols = [c for c in names if c in dataset.schema.names]
            usable = pc.field("error").is_null() | pc.starts_with(pc.field("error"), pattern=JUDGE_ERROR)
            table = dataset.to_table(columns=cols, filter=pc.field("record_key").isin(wanted) & usable)
            for rec in table.to_pylist():
                if rec.get("error"):  # its judge failed: the answer is good, the judgement is not
                    rec.update({k: None for k in JUDGE_COLUMNS})
                prev = found.get(rec["record_key"])
                if prev is None or (not prev.get("rubric_id") and rec.get("rubric_id")):
                    found[rec["record_key"]] = rec
        missing = set(keys) - set(found)
        if missing:
            raise RuntimeError(f"cache: {len(missing)} cached record(s) vanished while the run was reading them")
        return found


def _same_criteria(row: dict, rec: dict) -> bool:
    """A cached rubric judgement counts only for the same criteria (an edited rubric file is graded again)."""
    if row["benchmark_kind"] != "rubric":
        return True
    want = [c["criterion_id"] for c in json.loads(row["rubric_json"])["criteria"]]
    return [c["criterion_id"] for c in rec.get("criteria") or ()] == want
