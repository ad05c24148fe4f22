"""`evalsvc list`: recent runs under an output root (run.json + status.json), joined with a cluster's jobs.

Newest first by start time; runs submitted but not started yet appear from the cluster's job list alone.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from evalsvc.errors import UserError

HELP = (
    "List recent runs: every runs/<run_id>/ under the output root with its state, cells, progress and start "
    "time; with --address also the cluster's evalsvc jobs (their Ray status, and runs the output does not show yet).\n\n"
    "Examples:\n\n"
    "  evalsvc list --output s3://evals/runs\n\n"
    "  evalsvc list --output s3://evals/runs --address http://127.0.0.1:8265 --json"
)


def list_runs(
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/."),
    address: str | None = typer.Option(None, "--address", help="The head's dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)."),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many runs (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (one object per run, as `status --json`)."),
) -> None:
    from evalsvc.cli.status import open_jobs, read_store
    from evalsvc.jobs import runs
    from evalsvc.jobs.submission import normalize_root

    root = normalize_root(output) if output else None
    jobs, notes = open_jobs(address, reachable_without=root is not None)
    if root is None and jobs is None:
        raise UserError("nothing to list: give --output ROOT (or set EVALSVC_OUTPUT), --address, or both")
    store = read_store()
    views = runs.list_runs(root, store) if root else []
    views = runs.merge_jobs(views, jobs.list() if jobs else [], root, store)[:limit]
    if as_json:
        typer.echo(json.dumps([v.to_json() for v in views], indent=1))
    else:
        _print(views, root)
    err = Console(stderr=True, highlight=False)
    for note in notes + [f"{v.run_id}: {n}" for v in views for n in v.notes]:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")


def _print(views, root: str | None) -> None:
    t = Table(title=f"runs under {root}" if root else "runs on the cluster")
    for col in ("run", "state", "job", "cells", "progress", "started"):
        t.add_column(col, justify="right" if col in ("cells", "progress") else "left")
    for v in views:
        progress = v.progress()
        pct = f"{progress[0]}/{progress[1]} ({100 * progress[0] // max(progress[1], 1)}%)" if progress else "-"
        cells = v.cells()
        t.add_row(escape(v.run_id), v.state, v.job["status"] if v.job else "-", "-" if cells is None else str(cells), pct, v.started or "-")
    Console(highlight=False).print(t)


def register(app: typer.Typer) -> None:
    app.command("list", help=HELP)(list_runs)
