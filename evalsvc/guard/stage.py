"""The guard stage of the pipeline: fan each generated row out into one row per guardrail arm and apply the guards.

Input mode checks the request, output mode the request + answer, both = input first and output only if the input
passed; a block replaces the answer with the arm's refusal (the candidate's own answer stays in response_unguarded).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pyarrow as pa

from evalsvc.engines.chat import ChatClient, make_client, ready
from evalsvc.guard.call import Outcome, ask
from evalsvc.plan.arms import Arm, arm_records
from evalsvc.store.row import GUARD_COLUMNS


@dataclass(frozen=True)
class GuardConfig:
    arms: tuple[Arm, ...]  # manifest order; guarded arms carry their deployed target
    done: frozenset[str] = frozenset()  # arm record keys this run already has (resume): never written again
    concurrency: int = 16  # guard calls in flight per stage actor


def blocks(decision: str, on_error: str) -> bool:
    return decision == "block" or (decision == "error" and on_error == "block")


def request_text(row: dict) -> str:
    """What the guard sees as the request: the last user message the candidate was sent."""
    messages = json.loads(row["messages_json"])
    users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
    return users[-1] if users else row.get("question") or ""


class Guarding:
    """The guard logic without Ray: `clients` maps a guarded arm's name to the chat client that reaches its model."""

    def __init__(self, arms: tuple[Arm, ...], clients: dict[str, ChatClient], done: frozenset[str] = frozenset(),
                 concurrency: int = 16):  # fmt: skip
        self.arms, self.clients, self.done = list(arms), clients, done
        self.sem = asyncio.Semaphore(concurrency)
        self.attempts = 4  # tries per guard call (transient failures back off and retry)

    async def fan_out(self, row: dict) -> list[dict]:
        """The records-to-be of one generation: one row per arm this run does not have yet."""
        todo = [(a, k, c) for a, k, c in arm_records(row, self.arms) if k not in self.done]
        return list(await asyncio.gather(*(self._arm_row(row, a, k, c) for a, k, c in todo)))

    async def _arm_row(self, row: dict, arm: Arm | None, key: str, cid: str) -> dict:
        out = dict(row, record_key=key, cell_id=cid)
        out.update({c: None for c in GUARD_COLUMNS}, guardrail=arm.name if arm else None)
        if arm is None or not arm.guarded:
            return out
        if "reused_judgement" in row:  # a cached judgement scored the unguarded answer, not this arm's
            out["reused_judgement"] = False
        if row.get("error") is not None:  # the candidate failed: nothing to guard, the error is the record
            return out
        out.update(await self.guard(arm, request_text(row), row.get("response") or ""))
        return out

    async def guard(self, arm: Arm, question: str, response: str) -> dict:
        """The guard columns of one arm's record: decisions, raw answers, and the replaced response on a block."""
        fields: dict = {}
        raw: dict = {"input": None, "output": None}
        why: dict = {}
        replaced = False
        for check in arm.checks:
            o = await self.check(arm, check, question, response if check == "output" else None)
            fields[f"guard_{check}"] = o.decision
            raw[check] = o.raw
            for key, value in (("categories", ",".join(o.categories)), ("errors", o.error), ("labels", o.labels),
                               ("p_yes", o.p_yes)):  # fmt: skip
                if value or (key == "p_yes" and value is not None):  # a P(Yes) of 0 is a reading too
                    why.setdefault(key, {})[check] = value
            if blocks(o.decision, arm.on_error):
                replaced = True
                fields["guard_categories"] = ",".join(o.categories) or None  # why it was blocked
                break  # both: the output check runs only when the input passed
        fields["guard_raw"] = json.dumps({**raw, **why}, ensure_ascii=False)
        if replaced:
            fields.update(response=arm.refusal, response_unguarded=response)
        return fields

    async def check(self, arm: Arm, check: str, question: str, response: str | None = None) -> Outcome:
        """One guard check (one call, or one per policy); a failed call or an unparsable answer is decision `error`."""
        client = self.clients.get(arm.name)
        if client is None or arm.format is None:
            return Outcome("error", error="guard: no deployed guard model for this arm")
        return await ask(arm, client, check, question, response, self.sem, self.attempts)


def clients_for(arms: tuple[Arm, ...]) -> dict[str, ChatClient]:
    return {a.name: make_client(a.target) for a in arms if a.guarded and a.target is not None}


class GuardStage:
    """Ray Data callable class (one per guard-caller actor); async so many guard calls are in flight."""

    def __init__(self, config: GuardConfig):
        self.core = Guarding(config.arms, clients_for(config.arms), config.done, config.concurrency)

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        await ready(self.core.clients.values())  # guards still starting in the background: rows wait here
        per_row = await asyncio.gather(*(self.core.fan_out(r) for r in batch.to_pylist()))
        rows = [r for arm_rows in per_row for r in arm_rows]
        if rows:
            table = pa.Table.from_pylist(rows)
            for name in GUARD_COLUMNS:  # all-null in a batch would infer the null type; blocks must agree
                table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.string()))
            yield table


def apply_guards(ds, config: GuardConfig | None, batch_size: int):
    """`ds` with the guard stage appended (unchanged when the manifest has no guardrail axis)."""
    if config is None:
        return ds
    import ray

    return ds.map_batches(
        GuardStage,
        fn_constructor_kwargs={"config": config},
        batch_format="pyarrow",
        batch_size=batch_size,
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.25,
    )
