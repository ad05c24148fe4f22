"""`evalsvc bench SUITE`: measure evalsvc (efficiency, loads, overhead, memory, peers, e2e); one table of ratios.

Every run also writes SUITE.json under --out; `--json` prints that document instead of the table.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console

from evalsvc.errors import UserError


def parse_sizes(text: str | None) -> tuple[int, ...] | None:
    """'1k,10k,100000' → (1000, 10000, 100000)."""
    if text is None:
        return None
    sizes = []
    for part in text.split(","):
        p = part.strip().lower()
        mult = 1_000 if p.endswith("k") else 1
        try:
            value = int(p.removesuffix("k")) * mult
        except ValueError:
            raise UserError(f"--sizes: {part!r} is not a number (write e.g. 1k,10k,100k)") from None
        if value < 1:
            raise UserError(f"--sizes: {part!r} must be at least 1")
        sizes.append(value)
    return tuple(sizes)


def bench(
    suite: str = typer.Argument(..., help="efficiency | loads | overhead | memory | peers | e2e"),
    out: Path = typer.Option(Path(".evalsvc/bench"), "--out", help="Folder for SUITE.json (and the peers' throwaway envs)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of a table."),
    model: str = typer.Option(None, "--model", help="tiny or smollm2."),
    n: int = typer.Option(None, "--n", min=1, help="efficiency: generations to time (items × 4 strategies)."),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="New tokens per answer."),
    config: list[str] = typer.Option(None, "--config", help="efficiency: lever setting BATCHxCONCURRENT[pPENDING][+nomp]; repeat."),
    items: int = typer.Option(None, "--items", min=1, help="loads: items per benchmark."),
    naive_cells: int = typer.Option(None, "--naive-cells", min=1, help="loads: time only this many naive cells, scale up."),
    nomp: bool = typer.Option(None, "--nomp/--mp", help="loads: VLLM_ENABLE_V1_MULTIPROCESSING=0 on both sides."),
    records: int = typer.Option(None, "--records", min=1, help="overhead: records through the null engine."),
    repeats: int = typer.Option(None, "--repeats", min=1, help="efficiency, overhead, e2e: interleaved repeats of each side."),
    sizes: str = typer.Option(None, "--sizes", help="memory: record counts, e.g. 1k,10k,100k,300k."),
    peers: str = typer.Option(None, "--peers", help="peers: which, e.g. lm-eval,inspect-ai."),
    manifest: str = typer.Option(None, "--manifest", help="e2e, peers: the manifest every side runs (default: the quickstart; peers: manifests/peers.yaml)."),
) -> None:
    """Run one benchmark suite on local Ray and print its table with the ratios side by side.

    Examples: evalsvc bench efficiency --model tiny --n 256 --config 16x8 --config 64x16p256 ;
    evalsvc bench memory --sizes 1k,10k,100k --out bench-out --json ; evalsvc bench e2e --manifest manifests/quickstart.yaml
    """
    from evalsvc.cli.terminal import Terminal
    from evalsvc.perf.report import render, write_json
    from evalsvc.perf.suites import run_suite

    options = {
        "model": model, "n": n, "max_tokens": max_tokens, "configs": tuple(config) if config else None,
        "items": items, "naive_cells": naive_cells, "no_mp": nomp, "records": records, "repeats": repeats, "sizes": parse_sizes(sizes),
        "peers": tuple(p.strip() for p in peers.split(",")) if peers else None, "manifest": manifest,
    }  # fmt: skip
    with Terminal(None, json_stdout=as_json):  # Ray and vLLM print to fd 1 from C++ and subprocesses
        result = run_suite(suite, out, options)
    path = write_json(result, out)
    if as_json:
        typer.echo(json.dumps(asdict(result), default=str))
        return
    # Piped into a file the table still gets room for its columns (rich would assume 80).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    console.print(render(result))
    console.print(f"written: {path}")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
