"""The in-flight row: what flows plan → engine → guard → judge → record, declared once, next to RECORD_SCHEMA.

Each stage names the columns it needs and the ones it adds (as ray.data.llm's stages do); `check_stage` turns a
missing column into one clear error instead of a KeyError deep inside a Ray worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa

from evalsvc.store.record import CATEGORY_FIELDS

# The benchmark kinds: how an answer is scored. mcq answers are parsed; the others are judged with a rubric
# (rubric: HealthBench-format examples, one judge call per criterion of each answer).
BenchmarkKind = Literal["harm", "mcq", "high_risk", "rubric"]
JudgedKind = Literal["harm", "high_risk", "rubric"]
LabelledKind = Literal["harm", "high_risk"]  # kinds a calibration slice labels (one score or label per answer)
KINDS: tuple[str, ...] = get_args(BenchmarkKind)
JUDGED_KINDS: tuple[str, ...] = get_args(JudgedKind)

# Added by plan expansion (plan.grid.expand_item); the engine stages carry them through unchanged.
PLAN_COLUMNS = (
    "record_key", "cell_id", "candidate", "model_source", "lora", "benchmark", "benchmark_kind", "benchmark_version",
    "split", "item_id", "sample_index", "strategy", "answer", "option_letters", "options_json", "question",
    "reference", "messages_json", "sampling", *CATEGORY_FIELDS,
    "rubric_json",  # rubric: the example's conversation, criteria and tags as JSON (null for other kinds)
    "n_criteria",  # rubric: grader calls per generation (0 for other kinds)
)  # fmt: skip
# Their types, so an expanded block is built column by column (and a block whose `lora` is all null still has the
# same schema as one with adapters: Ray Data cannot join a null-typed column to a typed one inside a struct).
_INT_PLAN_COLUMNS = ("sample_index", "n_criteria")
PLAN_SCHEMA = pa.schema([(c, pa.int64() if c in _INT_PLAN_COLUMNS else pa.string()) for c in PLAN_COLUMNS])
# Added by the candidate stage (vLLM engine, endpoint, or the cache): the answer or the reason there is none.
GENERATION_COLUMNS = ("response", "prompt_tokens", "completion_tokens", "latency_s", "finish_reason", "error")
# Added by the guard stage: one row per guardrail arm.
GUARD_COLUMNS = ("guardrail", "guard_input", "guard_output", "guard_raw", "response_unguarded", "guard_categories")
# Added by the judge stage (and taken from the cache when the judge and rubric match).
JUDGE_COLUMNS = ("judge_model", "rubric_id", "rubric_version", "judge_raw", "score", "label", "parse_ok", "judge_votes",
                 "criteria")  # fmt: skip
NESTED_JUDGE_COLUMNS = ("criteria",)  # list columns: between stages (and in the cache join) they travel as JSON text


@dataclass(frozen=True)
class Stage:
    """A stage of the row's path: the columns it reads and the ones it writes."""

    name: str
    needs: tuple[str, ...]
    adds: tuple[str, ...]


CANDIDATES = Stage("candidates", needs=PLAN_COLUMNS, adds=GENERATION_COLUMNS)
GUARDS = Stage("guards", needs=(*PLAN_COLUMNS, *GENERATION_COLUMNS), adds=GUARD_COLUMNS)
JUDGE = Stage("judge", needs=(*PLAN_COLUMNS, *GENERATION_COLUMNS), adds=JUDGE_COLUMNS)


def check_stage(stage: Stage, columns: list[str] | tuple[str, ...]) -> None:
    """Raise if a batch handed to `stage` lacks a column the stage needs (a wiring bug, never a user mistake)."""
    missing = [c for c in stage.needs if c not in columns]
    if missing:
        raise RuntimeError(f"{stage.name} stage: the rows lack {missing}: an earlier stage did not add them")
