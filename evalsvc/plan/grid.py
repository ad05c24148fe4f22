"""Expand a manifest into a Plan: one Cell per model × benchmark × strategy, grouped by engine (checkpoint).

The plan loads the benchmark items, so it knows exact counts; `rows()` yields the pipeline rows with their keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from evalsvc.benchmarks import benchmark_version, load_items
from evalsvc.benchmarks.item import CATEGORY_FIELDS, Item
from evalsvc.benchmarks.rubric import rubric_context
from evalsvc.errors import UserError
from evalsvc.manifest.models import Endpoint
from evalsvc.manifest.schema import Manifest, Sampling, strategy_name
from evalsvc.plan.keys import cell_id, model_fingerprint, record_key
from evalsvc.store.uri import S3Conn
from evalsvc.strategies import Strategy, get_strategy

CHARS_PER_TOKEN = 4  # rough; only for the plan's token estimate
ESTIMATE_SAMPLE = 200  # items per benchmark rendered for the estimate


@dataclass(frozen=True)
class ModelPlan:
    name: str
    source: str  # checkpoint source (for a LoRA adapter: its base's source)
    revision: str | None
    engine_args: dict
    replicas: int
    chat_template: str | None
    sampling: Sampling
    engine: str  # name of the model entry whose engine serves this model (itself, or its LoRA base)
    adapter: str | None = None
    fingerprint: str = ""
    endpoint: Endpoint | None = None  # an OpenAI-compatible API: its own "engine", with nothing to load


@dataclass(frozen=True)
class BenchmarkPlan:
    name: str
    kind: str
    version: str
    n_items: int
    n_criteria: int = 0  # rubric: criteria over all items (one grader call each per generation)


@dataclass(frozen=True)
class Cell:
    cell_id: str
    model: str
    benchmark: str
    strategy: str
    kind: str
    n_items: int
    samples: int  # samples per item
    guardrail: str | None = None  # the guardrail arm ('none' = unguarded); None when there is no guardrail axis
    guard_mode: str | None = None  # input | output | both for a guarded arm
    calls_per_check: int = 1  # guard calls of one check (a format asking one policy per call makes one per policy)
    n_criteria: int = 0  # rubric: criteria over the cell's items

    @property
    def generations(self) -> int:
        """Records of this cell (arms of one model × benchmark × strategy share their generations)."""
        return self.n_items * self.samples

    @property
    def criteria(self) -> int:
        """Rubric criteria to grade: every criterion of an item, for each of its generations."""
        return self.n_criteria * self.samples

    @property
    def judge_calls(self) -> int:
        """Judge requests (per juror): one per record, or one per criterion of each record for a rubric."""
        if self.kind == "rubric":
            return self.criteria
        return 0 if self.kind == "mcq" else self.generations

    @property
    def guard_calls(self) -> int:
        """At most this many guard calls (both: the output check runs only when the input passed)."""
        checks = {"input": 1, "output": 1, "both": 2}.get(self.guard_mode or "", 0)
        return self.generations * checks * self.calls_per_check


@dataclass
class Plan:
    manifest: Manifest
    models: list[ModelPlan]
    benchmarks: list[BenchmarkPlan]
    strategies: list[Strategy]
    cells: list[Cell]
    items: dict[str, list[Item]] = field(repr=False)
    arms: list = field(default_factory=list)  # evalsvc.plan.arms.Arm per guardrail, in manifest order

    def generation_cells(self) -> list[Cell]:
        """One cell per model × benchmark × strategy: with a guardrail axis, the first arm stands for the rest."""
        return [c for c in self.cells if c.guardrail is None or c.guardrail == self.arms[0].name]

    def engines(self) -> dict[str, list[str]]:
        """Engine (checkpoint) name → the model names it serves, in manifest order: one load per checkpoint."""
        out: dict[str, list[str]] = {}
        for m in self.models:
            out.setdefault(m.engine, []).append(m.name)
        return out

    def model(self, name: str) -> ModelPlan:
        return next(m for m in self.models if m.name == name)

    def rows(self, model_name: str) -> Iterator[dict]:
        """Every generation of one model: benchmark × strategy × item × sample, with its record key."""
        m = self.model(model_name)
        for b in self.benchmarks:
            for item in self.items[b.name]:
                yield from expand_item(item, m, b, self.strategies)

    def totals(self) -> dict:
        gen_cells = self.generation_cells()
        gens = sum(c.generations for c in gen_cells)
        prompt_chars = 0.0
        for b in self.benchmarks:
            sample = self.items[b.name][:ESTIMATE_SAMPLE]
            if not sample:
                continue
            chars: float = sum(len(json.dumps(s.render(i))) for s in self.strategies for i in sample)
            per_gen = chars / (len(sample) * len(self.strategies))
            prompt_chars += per_gen * sum(c.generations for c in gen_cells if c.benchmark == b.name)
        max_new = sum(c.generations * self.model(c.model).sampling.max_tokens for c in gen_cells)
        return {
            "cells": len(self.cells),
            "models": len(self.models),
            "engine_loads": sum(self.model(e).replicas for e in self.engines() if not self.model(e).endpoint),
            "endpoint_requests": sum(c.generations for c in gen_cells if self.model(c.model).endpoint),
            "items": sum(b.n_items for b in self.benchmarks),
            "generations": gens,
            "records": sum(c.generations for c in self.cells),
            "guard_calls": sum(c.guard_calls for c in self.cells),
            "judge_calls": sum(c.judge_calls for c in self.cells),
            "criteria": sum(c.criteria for c in self.cells if c.kind == "rubric"),
            "mcq_parsed": sum(c.generations for c in self.cells if c.kind == "mcq"),
            "est_prompt_tokens": int(prompt_chars / CHARS_PER_TOKEN),
            "max_completion_tokens": max_new,
        }

    def to_json(self) -> dict:
        return {
            "name": self.manifest.name,
            "engines": self.engines(),
            "endpoints": {
                m.name: {"url": m.endpoint.url, "model_name": m.endpoint.model_name, "qps": m.endpoint.qps,
                         "concurrency": m.endpoint.concurrency}
                for m in self.models if m.endpoint
            },  # fmt: skip
            "benchmarks": [b.__dict__ for b in self.benchmarks],
            "strategies": [s.name for s in self.strategies],
            "guardrails": [
                {"name": a.name, "mode": a.mode, "format": a.format.label if a.format else None, "backend": a.label,
                 "on_error": a.on_error if a.guarded else None, "fingerprint": a.fingerprint,
                 **({"options": a.options.as_dict()} if a.options.as_dict() else {})}
                for a in self.arms
            ],  # fmt: skip
            "cells": [{**c.__dict__, "generations": c.generations, "judge_calls": c.judge_calls,
                       "guard_calls": c.guard_calls, "criteria": c.criteria} for c in self.cells],  # fmt: skip
            "totals": self.totals(),
        }


def expand_item(item: Item, m: ModelPlan, b: BenchmarkPlan, strategies: list[Strategy]) -> Iterator[dict]:
    """The rows of one item for one model: one per strategy × sample (pure, so Ray workers can run it)."""
    for strat in strategies:
        cid = cell_id(m.name, b.name, strat.name)
        messages = strat.render(item)
        for k in range(m.sampling.n):
            yield _row(m, b, strat.name, cid, item, messages, k)


def _row(m: ModelPlan, b: BenchmarkPlan, strategy: str, cid: str, item: Item, messages: list, k: int) -> dict:
    sampling = {
        "temperature": m.sampling.temperature,
        "top_p": m.sampling.top_p,
        "max_tokens": m.sampling.max_tokens,
        "seed": m.sampling.seed + k,
    }
    row = {
        "record_key": record_key(m.fingerprint, messages, sampling, k, (b.name, item.item_id)),
        "cell_id": cid,
        "candidate": m.name,  # not "model": ray.data.llm reads a `model` column as a LoRA adapter name
        "model_source": m.source,
        "lora": m.name if m.adapter else None,
        "benchmark": b.name,
        "benchmark_kind": b.kind,
        "benchmark_version": b.version,
        "split": item.split,
        "item_id": item.item_id,
        "sample_index": k,
        "strategy": strategy,
        "answer": item.answer,
        "option_letters": "".join(item.options) if item.options else "",
        "options_json": json.dumps(item.options, ensure_ascii=False) if item.options else "",
        "question": item.text,
        "reference": item.reference,
        "messages_json": json.dumps(messages, ensure_ascii=False),
        "sampling": json.dumps(sampling),
    }
    for f in CATEGORY_FIELDS:
        row[f] = item.categories.get(f)
    row["rubric_json"] = rubric_context(item) if item.kind == "rubric" else None  # conversation, criteria, tags
    row["n_criteria"] = len(item.criteria or ())
    return row


def build_plan(manifest: Manifest, s3: S3Conn | None = None) -> Plan:
    models = _model_plans(manifest)
    strategies = [get_strategy(s) for s in manifest.strategies]
    items: dict[str, list[Item]] = {}
    benches, problems = [], []
    for b in manifest.benchmarks:
        try:
            items[b.name] = load_items(b, s3)
            n_criteria = sum(len(i.criteria or ()) for i in items[b.name])
            benches.append(BenchmarkPlan(b.name, b.kind, benchmark_version(b, s3), len(items[b.name]), n_criteria))
        except UserError as e:  # report every benchmark's problem at once, like the manifest's
            problems.extend(e.problems or [e.message])  # a file's own problem lines each name file and row
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} problems in the benchmarks", problems)
    arms = _arms(manifest)
    cells = [
        Cell(cell_id(m.name, b.name, s.name, a.name if a else None), m.name, b.name, s.name, b.kind, b.n_items,
             m.sampling.n, a.name if a else None, a.mode if a else None,
             len(a.options.subjects()) if a else 1, n_criteria=b.n_criteria)
        for m in models
        for a in (arms or [None])
        for b in benches
        for s in strategies
    ]  # fmt: skip
    return Plan(manifest, models, benches, strategies, cells, items, arms)


def _arms(manifest: Manifest) -> list:
    if not manifest.guardrails:
        return []
    from evalsvc.plan.arms import plan_arms  # loads and checks the guard formats

    return plan_arms(manifest.guardrails)


def data_conn(manifest: Manifest) -> S3Conn | None:
    """The S3 connection benchmark files on s3:// are read with (the output's), resolved only when one needs it."""
    if any(b.path and b.path.startswith("s3://") for b in manifest.benchmarks):
        return S3Conn.from_options(manifest.output.s3)
    return None


def _model_plans(manifest: Manifest) -> list[ModelPlan]:
    by_name = {m.name: m for m in manifest.models}
    out = []
    for m in manifest.models:
        ckpt = by_name[m.base] if m.base else m
        sampling = manifest.sampling.model_copy(update=m.sampling.model_dump(exclude_none=True) if m.sampling else {})
        if m.endpoint is not None:
            out.append(_endpoint_plan(m.name, m.endpoint, sampling))
            continue
        engine_args = ckpt.engine_args.model_dump(exclude_none=True)
        source = ckpt.source or ""
        fp = model_fingerprint(source, ckpt.revision, engine_args, ckpt.chat_template, m.adapter)
        out.append(
            ModelPlan(
                name=m.name,
                source=source,
                revision=ckpt.revision,
                engine_args=engine_args,
                replicas=ckpt.replicas,
                chat_template=ckpt.chat_template,
                sampling=sampling,
                engine=ckpt.name,
                adapter=m.adapter,
                fingerprint=fp,
            )
        )
    return out


def _endpoint_plan(name: str, ep: Endpoint, sampling: Sampling) -> ModelPlan:
    """An endpoint's records are keyed by URL + model name (never its key): what the server runs is its business."""
    label = f"{ep.url}#{ep.model_name}"
    fp = model_fingerprint(label, None, {}, None, None)
    return ModelPlan(name, label, None, {}, 0, None, sampling, engine=name, fingerprint=fp, endpoint=ep)


def strategy_names(manifest: Manifest) -> list[str]:
    return [strategy_name(s) for s in manifest.strategies]
