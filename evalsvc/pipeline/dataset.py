"""Build the Ray Dataset of one engine's generations: items are shipped in blocks, rows are expanded in workers.

The driver holds only the items (small), never the items × strategies × samples rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pyarrow as pa

from evalsvc.benchmarks.item import Item
from evalsvc.plan.grid import BenchmarkPlan, ModelPlan, Plan, expand_item
from evalsvc.store.row import PLAN_SCHEMA
from evalsvc.strategies import Strategy

# Each block is an Arrow table plus an object reference the driver holds and a task to schedule: past a few
# hundred blocks the driver grows with the grid (25,000 blocks of 4 items cost 308 MiB at 100k records).
# Beyond MAX_BLOCKS × MAX_ITEMS_PER_BLOCK items (262,144 per engine) the block count grows again, slowly.
MAX_BLOCKS = 256
MAX_ITEMS_PER_BLOCK = 1024


def items_per_block(total_items: int, rows_per_item: int, batch_size: int) -> int:
    """About one engine batch of items per block, so a failed task (a killed actor) redoes one batch and records
    reach storage batch by batch; big grids get bigger blocks so there are at most about MAX_BLOCKS of them."""
    batch_sized = max(1, batch_size // rows_per_item)
    bounded = math.ceil(total_items / MAX_BLOCKS)
    return min(MAX_ITEMS_PER_BLOCK, max(batch_sized, bounded))


def engine_dataset(plan: Plan, model_names: list[str], skip: set[str] | None = None, only: set[str] | None = None):
    """The rows of the models served by one engine (base checkpoint + its LoRA adapters): all of them minus
    `skip`, or just those in `only`."""
    import ray

    rows_per_item = len(plan.strategies) * max(m.sampling.n for m in plan.models if m.name in model_names)
    total_items = len(model_names) * sum(len(plan.items[b.name]) for b in plan.benchmarks)
    per_block = items_per_block(total_items, rows_per_item, plan.manifest.resources.batch_size)
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
    # batch_size=None: one call per shipped block, which becomes one block of rows built column by column
    return ds.map_batches(expander, batch_format="pyarrow", batch_size=None, num_cpus=0.25)


class _Expander:
    """Picklable block expander (a plain function closing over the plan would drag the whole plan along): a block
    of items → the block of their rows (strategies × samples), minus `skip` or just those in `only`."""

    def __init__(self, models: dict[str, ModelPlan], benches: dict[str, BenchmarkPlan], strategies: list[Strategy],
                 skip: frozenset[str], only: frozenset[str] | None):  # fmt: skip
        self.models, self.benches, self.strategies = models, benches, strategies
        self.skip, self.only = skip, only

    def __call__(self, block: pa.Table) -> pa.Table:
        columns: dict[str, list] = {name: [] for name in PLAN_SCHEMA.names}
        for model, bench, item in zip(*(block.column(c).to_pylist() for c in ("model", "benchmark", "item"))):
            for row in expand_item(Item(**json.loads(item)), self.models[model], self.benches[bench], self.strategies):
                if self._keep(row["record_key"]):
                    for name, values in columns.items():
                        values.append(row[name])
        return pa.table(columns, schema=PLAN_SCHEMA)

    def _keep(self, key: str) -> bool:
        return key in self.only if self.only is not None else key not in self.skip
