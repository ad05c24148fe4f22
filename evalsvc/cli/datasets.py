"""`evalsvc datasets list|fetch|verify`: see the built-in datasets, make MedSafetyBench available locally, check its checksums.

Fetching never writes into the project: it uses a verified local mirror in place, or downloads into the cache folder.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from evalsvc.errors import SystemError_

datasets_app = typer.Typer(
    help="Built-in datasets: list them, fetch MedSafetyBench (pinned commit, sha256-checked), verify local copies.\n\n"
    "Example: evalsvc datasets fetch medsafetybench",
    no_args_is_help=True,
)

DATA_DIR = typer.Option(
    None,
    "--data-dir",
    help="Cache folder (default $EVALSVC_DATA_DIR, else ~/.cache/evalsvc/datasets).",
    show_default=False,
)
NAME = typer.Argument(
    None, help="Dataset name (medsafetybench, medguard, medharm); all when left out.", show_default=False
)


@datasets_app.command("list")
def list_datasets(data_dir: Path | None = DATA_DIR) -> None:
    """List the built-in datasets with their splits, item counts and where their data is.

    Example: evalsvc datasets list
    """
    from evalsvc.benchmarks.registry import DATASETS, RemoteDataset

    table = Table(show_lines=True)
    table.add_column("dataset", no_wrap=True)
    table.add_column("splits", no_wrap=True)
    table.add_column("items", justify="right", no_wrap=True)
    table.add_column("cached?")
    table.add_column("location", overflow="fold")
    for ds in DATASETS.values():
        splits = "\n".join(f"{s} (default)" if s == ds.default_split else s for s in ds.splits)
        items = "\n".join(f"{n:,}" for n in ds.splits.values())
        if isinstance(ds, RemoteDataset):
            state, where = _remote_state(ds, data_dir)
        else:
            state, where = "bundled", f"evalsvc/benchmarks/samples/{ds.sample.name}"
        table.add_row(ds.name, splits, items, state, str(where))
    Console(highlight=False).print(table)


@datasets_app.command("fetch")
def fetch_datasets(
    name: str | None = NAME,
    data_dir: Path | None = DATA_DIR,
    copy: bool = typer.Option(
        False, "--copy", help="Copy files from a local mirror into the cache instead of reading it in place."
    ),
) -> None:
    """Make a dataset available locally: verify a local mirror ($EVALSVC_DATA_MIRROR or ../shared/data) and use it
    in place, or download the pinned upstream commit into the cache. Every file is sha256-checked.

    Example: evalsvc datasets fetch medsafetybench
    """
    from evalsvc.benchmarks.fetch import fetch
    from evalsvc.benchmarks.registry import RemoteDataset

    console = Console(highlight=False)
    for ds in _selected(name):
        if not isinstance(ds, RemoteDataset):
            console.print(f"{ds.name}: bundled with evalsvc ({ds.sample}); nothing to fetch")
            continue
        loc = fetch(ds, data_dir, copy=copy)
        how = "read in place from the mirror" if loc.kind == "mirror" else "in the cache"
        console.print(f"[green]{ds.version}:[/green] {len(ds.files)} files verified, {how} at {loc.root}")


@datasets_app.command("verify")
def verify_datasets(name: str | None = NAME, data_dir: Path | None = DATA_DIR) -> None:
    """Recompute the sha256 of every file of a dataset's local copy; exit 1 naming each file that differs or is missing.

    Example: evalsvc datasets verify medsafetybench
    """
    from evalsvc.benchmarks.fetch import locate, verify_root
    from evalsvc.benchmarks.registry import RemoteDataset

    console = Console(highlight=False)
    problems: list[str] = []
    for ds in _selected(name):
        if not isinstance(ds, RemoteDataset):
            n = _check_sample(ds.name)
            console.print(f"[green]{ds.name}:[/green] bundled sample loads, {n} items")
            continue
        loc = locate(ds, data_dir)
        if loc is None:
            problems.append(f"{ds.name}: no local copy; run `evalsvc datasets fetch {ds.name}`")
            continue
        bad = verify_root(ds, loc.root)
        problems += [f"{ds.name}: {line}" for line in bad]
        if not bad:
            console.print(f"[green]{ds.version}:[/green] all {len(ds.files)} files match at {loc.root} ({loc.kind})")
    if problems:
        raise SystemError_(f"{len(problems)} dataset file(s) differ from the pinned checksums or are missing", problems)


def _selected(name: str | None) -> list:
    from evalsvc.benchmarks.registry import DATASETS, get_dataset

    return [get_dataset(name)] if name else list(DATASETS.values())


def _remote_state(ds, data_dir: Path | None) -> tuple[str, Path | str]:
    from evalsvc.benchmarks.fetch import cache_dir, files_present, find_mirror

    cache = cache_dir(ds, data_dir)
    present = files_present(ds, cache)
    if present == len(ds.files):
        return "yes (cache)", cache
    mirror = find_mirror(ds)
    if mirror is not None:
        return "yes (mirror)", mirror
    if present:
        return f"partial ({present}/{len(ds.files)} files)", cache
    return "no", cache


def _check_sample(name: str) -> int:
    from evalsvc.benchmarks import load_items
    from evalsvc.manifest.schema import Benchmark

    return len(load_items(Benchmark(name=name, dataset=name)))


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")
