"""Benchmarks: turn a manifest's benchmark entry into the list of items to evaluate, with its kind and data version.

Built-ins (MedSafetyBench, the MedGuard and MedHarm samples) come from the registry; custom files from `path`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalsvc.benchmarks.item import Item
from evalsvc.errors import UserError

if TYPE_CHECKING:
    from evalsvc.manifest.schema import Benchmark
    from evalsvc.store.uri import S3Conn

__all__ = ["Item", "benchmark_kind", "benchmark_version", "load_items"]


def load_items(bench: Benchmark, s3: S3Conn | None = None) -> list[Item]:
    """The benchmark's items after `filters`, then `select` (limit, seeded sample, optionally per category)."""
    from evalsvc.benchmarks.select import apply_filters, apply_selection

    items = apply_filters(_all_items(bench, s3), bench.filters, bench.name)
    return apply_selection(items, bench.select, bench.name)


def benchmark_version(bench: Benchmark, s3: S3Conn | None = None) -> str:
    """`medsafetybench@191aa79` for the pinned dataset; the custom file's `version` label or `sha256:<12 hex>` of its bytes."""
    from evalsvc.benchmarks.custom import file_digest
    from evalsvc.benchmarks.registry import get_dataset

    if bench.dataset is not None:
        return get_dataset(bench.dataset).version
    return bench.version or f"sha256:{file_digest(bench.name, bench.path, s3)[:12]}"


def benchmark_kind(bench: Benchmark) -> str:
    """harm (judged 1-5), mcq (answer letter parsed) or high_risk (behaviour judged)."""
    from evalsvc.benchmarks.registry import get_dataset

    return get_dataset(bench.dataset).kind if bench.dataset is not None else str(bench.format)


def _all_items(bench: Benchmark, s3: S3Conn | None) -> list[Item]:
    from evalsvc.benchmarks.custom import load_file
    from evalsvc.benchmarks.registry import BundledDataset, get_dataset

    if bench.dataset is None:
        return load_file(bench.name, bench.path, str(bench.format), bench.columns, bench.split or "test", s3)
    ds = get_dataset(bench.dataset)
    split = bench.split or ds.default_split
    if split not in ds.splits:
        raise UserError(
            f"benchmarks.{bench.name}.split: {bench.dataset} has no split {split!r}; use one of {', '.join(ds.splits)}"
        )
    if isinstance(ds, BundledDataset):
        return load_file(bench.name, str(ds.sample), ds.kind, None, split)
    from evalsvc.benchmarks.fetch import ensure
    from evalsvc.benchmarks.msb import load_msb

    return load_msb(split, ensure(ds))
