"""The judge stage of the pipeline: turn candidate rows into finished records.

Harm and high-risk rows are scored by the judge (rubric prompt → chat → strict parser), or by every juror of a jury
whose votes combine into the verdict; rubric rows get one such call per criterion (judge/criteria.py); MCQ rows are
parsed without a judge. Nothing is dropped: a failed call or an unparsable answer is a record that says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pyarrow as pa

from evalsvc.engines.chat import ChatClient, ChatTarget, ready
from evalsvc.judge.core import SINGLE_JUDGE, JudgeSettings, Judging
from evalsvc.judge.criteria import record_fields
from evalsvc.judge.jury import Jury
from evalsvc.judge.mcq import extract_answer
from evalsvc.specs.rubric import Rubric, load_rubric
from evalsvc.store.record import NONE_ARM, RECORD_SCHEMA
from evalsvc.store.row import JUDGE, JUDGE_COLUMNS, NESTED_JUDGE_COLUMNS, check_stage


@dataclass(frozen=True)
class JudgeConfig:
    run_id: str
    target: ChatTarget | Jury | None  # None when the run has only MCQ benchmarks
    rubrics: dict[str, str] = field(default_factory=dict)  # benchmark kind → rubric id or file
    temperature: float = 0.0
    max_tokens: int = 512
    guided: bool = True
    concurrency: int = 16
    progress_actor: str | None = None  # name of the Ray actor counting finished records per cell

    @property
    def settings(self) -> JudgeSettings:
        return JudgeSettings(self.temperature, self.max_tokens, self.guided, self.concurrency)


class JudgeStage:
    """Ray Data callable class (one per judge-caller actor); async so many judge calls are in flight."""

    def __init__(self, config: JudgeConfig):
        self.cfg = config
        self.rubrics: dict[str, Rubric] = {kind: load_rubric(ref) for kind, ref in config.rubrics.items()}
        # one core judges single judges and juries (and, per criterion, rubrics); None: MCQ only, nothing to call
        self.judging = Judging(config.target, config.settings) if config.target is not None else None
        self.sem = self.judging.sem if self.judging is not None else asyncio.Semaphore(config.concurrency)
        self.progress = _progress_handle(config.progress_actor)
        self.seen_rows = False
        self.waits_reported = 0  # judge calls that waited for a lost replica, as told to the progress actor

    @property
    def client(self) -> ChatClient | None:
        """The single judge's client (None for a jury or without a judge)."""
        if self.judging is None or self.judging.is_jury:
            return None
        return self.judging.clients[SINGLE_JUDGE]

    @client.setter
    def client(self, client: ChatClient) -> None:
        assert self.judging is not None and not self.judging.is_jury
        self.judging.clients[SINGLE_JUDGE] = client

    @property
    def jurors(self) -> dict[str, ChatClient]:
        """A jury's clients by juror name (empty for a single judge)."""
        return self.judging.clients if self.judging is not None and self.judging.is_jury else {}

    @jurors.setter
    def jurors(self, clients: dict[str, ChatClient]) -> None:
        assert self.judging is not None and self.judging.is_jury
        self.judging.clients.update(clients)

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        check_stage(JUDGE, batch.column_names)
        rows = batch.to_pylist()
        block = block_id(rows)  # a block seen twice was redone: counted once, and as a fault
        if self.progress is not None:  # answers count as generated on arrival, records once judged
            if not self.seen_rows:
                self.progress.mark.remote("first_generation", time.time())  # the run's timeline keeps the earliest
            self.progress.add.remote(arrivals(rows), None, f"arrived:{block}")
        self.seen_rows = True
        if any(needs_call(r) for r in rows):  # a judge still starting in the background: answers wait here
            await ready([self.client] if self.client is not None else self.jurors.values())
        verdicts = await asyncio.gather(*(self._verdict(r) for r in rows))
        records = with_verdicts(base_records(batch, self.cfg.run_id), verdicts)
        if self.progress is not None:
            self.progress.add.remote(tally(records.select(TALLY_COLUMNS).to_pylist()), time.time(), f"judged:{block}")
            self._report_waits()
        yield records

    def _report_waits(self) -> None:
        clients = self.judging.clients.values() if self.judging is not None else ()
        waits = sum(getattr(c, "replica_losses", 0) for c in clients)
        if waits > self.waits_reported:
            self.progress.fault.remote("judge_calls_waited", waits - self.waits_reported)
            self.waits_reported = waits

    async def _record(self, row: dict) -> dict:
        """One row's whole record, as the batch path builds it."""
        (base,) = base_records(pa.Table.from_pylist([row]), self.cfg.run_id).to_pylist()
        return {**base, **await self._verdict(row)}

    async def _verdict(self, row: dict) -> dict:
        """The record fields the judgement sets for `row` (none for a failed generation)."""
        if row.get("error") is not None:
            return {}
        kind, response = row["benchmark_kind"], row.get("response")
        if kind == "mcq":
            options = json.loads(row["options_json"]) if row.get("options_json") else None
            letter, ok, _how = extract_answer(response, row["option_letters"] or "ABCDE", options)
            return {"label": letter, "parse_ok": ok, "score": None if not ok else float(letter == row["answer"])}
        if row.get("reused_judgement"):  # an earlier run's judgement by the same judge and rubric version
            out = {k: row[f"cached_{k}"] for k in JUDGE_COLUMNS}
            for k in NESTED_JUDGE_COLUMNS:
                out[k] = json.loads(out[k]) if out[k] else None
            return out
        rubric = self.rubrics[kind]
        out = {"judge_model": self.cfg.target.label, "rubric_id": rubric.id, "rubric_version": rubric.version}
        if kind == "rubric":
            return {**out, **record_fields(await self.judging.grade(rubric, row, response))}
        j = await self.judging.judge(rubric, row, response)  # a failed call is recorded, never dropped
        return {**out, "judge_raw": j.raw, "score": j.score, "label": j.label, "parse_ok": j.parse_ok,
                "error": j.error, "judge_votes": j.votes_json}  # fmt: skip


TALLY_COLUMNS = ("cell_id", "error", "parse_ok", "criteria")


def tally(records: list[dict]) -> dict[str, list[int]]:
    """cell id → [records, errors, parse failures, 0, 0, rubric criteria graded, of them failed] of finished records
    (the progress actor's CELL_COUNTS)."""
    counts: dict[str, list[int]] = {}
    for rec in records:
        c = counts.setdefault(rec["cell_id"], [0] * 7)
        c[0] += 1
        c[1] += rec["error"] is not None
        c[2] += rec["error"] is None and not rec["parse_ok"]
        c[5] += len(rec.get("criteria") or ())
        c[6] += sum(v["met"] is None for v in rec.get("criteria") or ())
    return counts


def block_id(rows: list[dict]) -> str:
    """The same block, redone by a retried task, gets the same id: a digest of its record keys (and guard arms)."""
    keys = sorted(f"{r.get('record_key')}/{r.get('guardrail')}" for r in rows)
    return hashlib.blake2b("\n".join(keys).encode(), digest_size=8).hexdigest()


def arrivals(rows: list[dict]) -> dict[str, list[int]]:
    """cell id → [0, 0, 0, completion tokens generated now, answers arrived]: a cached answer adds no tokens, and
    a generation fanned out to guardrail arms adds its tokens once (on the unguarded arm)."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        c = counts.setdefault(row["cell_id"], [0, 0, 0, 0, 0])
        fresh = "reused_judgement" not in row and row.get("guardrail") in (None, NONE_ARM)
        c[3] += int(row.get("completion_tokens") or 0) if fresh else 0
        c[4] += 1
    return counts


def needs_call(row: dict) -> bool:
    """Whether `row` is sent to the judge: a judged benchmark, a generated answer, no reused judgement."""
    return row["benchmark_kind"] != "mcq" and row.get("error") is None and not row.get("reused_judgement")


# Record columns taken from a differently named row column; the judgement's own columns start empty.
_FROM_ROW = {"model": "candidate", "messages": "messages_json"}
_EMPTY = {"run_id", "parse_ok", "example_tags", *NESTED_JUDGE_COLUMNS}


def base_records(batch: pa.Table, run_id: str) -> pa.Table:
    """RECORD_SCHEMA records holding the candidate half of `batch`, column by column; the judgement's fields stay
    empty (parse_ok false) and a rubric example's tags (theme:*) group its records in the summary."""
    n = batch.num_rows
    columns = []
    for f in RECORD_SCHEMA:
        name = _FROM_ROW.get(f.name, f.name)
        if f.name not in _EMPTY and name in batch.column_names:
            columns.append(batch.column(name).cast(f.type))
        else:
            columns.append(pa.nulls(n, f.type))
    table = pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)
    table = _set(table, "run_id", [run_id] * n)
    table = _set(table, "parse_ok", [False] * n)
    if "rubric_json" in batch.column_names and batch.column("rubric_json").null_count < n:
        tags = [json.loads(r).get("tags") or [] if r else None for r in batch.column("rubric_json").to_pylist()]
        table = _set(table, "example_tags", tags)
    return table


def with_verdicts(records: pa.Table, verdicts: list[dict]) -> pa.Table:
    """`records` with each row's judgement fields set (a verdict names only the fields it sets)."""
    for name in sorted({k for v in verdicts for k in v}):
        values = records.column(name).to_pylist()
        for i, v in enumerate(verdicts):
            if name in v:
                values[i] = v[name]
        records = _set(records, name, values)
    return records


def _set(table: pa.Table, name: str, values: list) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def _progress_handle(name: str | None):
    if not name:
        return None
    import ray

    return ray.get_actor(name)

