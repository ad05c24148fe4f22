"""Reuse what earlier runs computed: cached generations skip the engine, matching judgements skip the judge.

A cached record is matched by record key (same model source+revision, output-affecting engine args, prompt,
sampling, sample index); its identity columns are rewritten to this run's names, its text is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from evalsvc.engines.vllm import CARRIED
from evalsvc.manifest.plan import Plan
from evalsvc.store.index import KeyIndex
from evalsvc.store.uri import S3Conn, filesystem

GENERATION_COLUMNS = ("response", "prompt_tokens", "completion_tokens", "latency_s", "finish_reason")
JUDGE_COLUMNS = ("judge_model", "rubric_id", "rubric_version", "judge_raw", "score", "label", "parse_ok")


@dataclass
class ReusePlan:
    """Per model: which of its keys are already in this run (skip), and which come from the cache."""

    skip: set[str] = field(default_factory=set)  # already written in this run (resume)
    cached: set[str] = field(default_factory=set)  # a generation exists in an earlier run
    new_generations: dict[str, int] = field(default_factory=dict)  # engine -> rows still to generate
    reused_generations: int = 0
    reused_judgements: int = 0


def plan_reuse(plan: Plan, done: KeyIndex, cache: KeyIndex, judge_sig: dict[str, tuple[str, str, str]]) -> ReusePlan:
    """Walk every row key once in the driver (no rows kept) and sort it into skip / cached / new."""
    out = ReusePlan()
    for engine, models in plan.engines().items():
        new = 0
        for name in models:
            for row in plan.rows(name):
                key = row["record_key"]
                if key in done.present:
                    out.skip.add(key)
                elif key in cache.generated:
                    out.cached.add(key)
                    out.reused_generations += 1
                    kind = row["benchmark_kind"]
                    if kind == "mcq" or cache.judged.get(key) == judge_sig.get(kind):
                        out.reused_judgements += kind != "mcq"
                else:
                    new += 1
        out.new_generations[engine] = new
    return out


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
            new = {k: row.get(k) for k in CARRIED}
            new.update({k: rec.get(k) for k in GENERATION_COLUMNS})
            new["error"] = None
            sig = (rec.get("judge_model") or "", rec.get("rubric_id") or "", rec.get("rubric_version") or "")
            reuse = row["benchmark_kind"] != "mcq" and rec.get("rubric_id") and sig == self.judge_sig.get(row["benchmark_kind"])
            new["reused_judgement"] = bool(reuse)
            for k in JUDGE_COLUMNS:
                new[f"cached_{k}"] = rec.get(k) if reuse else None
            out.append(new)
        return pa.Table.from_pylist(out)

    def _lookup(self, keys: list[str]) -> dict[str, dict]:
        wanted = pa.array(sorted(set(keys)))
        found: dict[str, dict] = {}
        for uri in self.sources:
            fs, path = filesystem(uri, self.conn)
            dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive")
            cols = ["record_key", *GENERATION_COLUMNS, *JUDGE_COLUMNS, "error"]
            table = dataset.to_table(columns=cols, filter=pc.field("record_key").isin(wanted) & pc.field("error").is_null())
            for rec in table.to_pylist():
                prev = found.get(rec["record_key"])
                if prev is None or (not prev.get("rubric_id") and rec.get("rubric_id")):
                    found[rec["record_key"]] = rec
        missing = set(keys) - set(found)
        if missing:
            raise RuntimeError(f"cache: {len(missing)} cached record(s) vanished while the run was reading them")
        return found
