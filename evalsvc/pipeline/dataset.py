"""Build the Ray Dataset of one engine's generations: items are shipped in blocks, rows are expanded in workers.

The driver holds only the items (small), never the items × strategies × samples rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import pyarrow as pa

from evalsvc.benchmarks.item import Item
from evalsvc.manifest.plan import BenchmarkPlan, ModelPlan, Plan, expand_item
from evalsvc.strategies import Strategy

MAX_ITEMS_PER_BLOCK = 256


def engine_dataset(plan: Plan, model_names: list[str], skip: set[str] | None = None, only: set[str] | None = None):
    """The rows of the models served by one engine (base checkpoint + its LoRA adapters): all of them minus
    `skip`, or just those in `only`."""
    import ray

    # Blocks of about one engine batch: a task that fails (a killed actor) is retried alone, so a fault redoes
    # at most one batch, and records reach storage batch by batch instead of at the end of a big block.
    rows_per_item = len(plan.strategies) * max(m.sampling.n for m in plan.models if m.name in model_names)
    per_block = max(1, min(MAX_ITEMS_PER_BLOCK, plan.manifest.resources.batch_size // rows_per_item))
    tables = []
    for name in model_names:
        for b in plan.benchmarks:
            items = plan.items[b.name]
            for start in range(0, len(items), per_block):
                chunk = items[start : start + per_block]
                tables.append(
                    pa.table(
                        {
                            "model": [name] * len(chunk),
                            "benchmark": [b.name] * len(chunk),
                            "item": [json.dumps(asdict(i), ensure_ascii=False) for i in chunk],
                        }
                    )
                )
    if not tables:
        return None
    ds = ray.data.from_arrow(tables)
    expander = _Expander(
        {m.name: m for m in plan.models if m.name in model_names},
        {b.name: b for b in plan.benchmarks},
        plan.strategies,
        frozenset(skip or ()),
        None if only is None else frozenset(only),
    )
    return ds.flat_map(expander, num_cpus=0.25)


class _Expander:
    """Picklable row expander (a plain function closing over the plan would drag the whole plan along)."""

    def __init__(self, models: dict[str, ModelPlan], benches: dict[str, BenchmarkPlan], strategies: list[Strategy],
                 skip: frozenset[str], only: frozenset[str] | None):  # fmt: skip
        self.models, self.benches, self.strategies = models, benches, strategies
        self.skip, self.only = skip, only

    def __call__(self, row: dict) -> list[dict]:
        item = Item(**json.loads(row["item"]))
        rows = expand_item(item, self.models[row["model"]], self.benches[row["benchmark"]], self.strategies)
        if self.only is not None:
            return [r for r in rows if r["record_key"] in self.only]
        return [r for r in rows if r["record_key"] not in self.skip]
