"""`evalsvc status RUN`: the run's state (Ray's job status joined with the run's own) and per-cell progress.

Works with the cluster alone (the job's metadata names the output), with the output alone, or with both.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

HELP = (
    "Show a run's state and per-cell progress: Ray's job status (with --address) joined with the run's "
    "status.json (from the output root). With only --address, the output root comes from the job's metadata; "
    "with only --output, it works after the cluster is gone.\n\n"
    "RUN is a run id, or a run URI such as s3://bucket/prefix/runs/RUN_ID. States: pending, running, "
    "succeeded, failed, cancelled.\n\n"
    "Examples:\n\n"
    "  evalsvc status quickstart-20261122-101500-ab12 --address http://127.0.0.1:8265\n\n"
    "  evalsvc status quickstart-20261122-101500-ab12 --output s3://evals/runs --json"
)


def status(
    run: str = typer.Argument(..., help="Run id, or run URI (…/runs/<run_id>)."),
    address: str | None = typer.Option(None, "--address", help="The head's dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)."),
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/."),
    as_json: bool = typer.Option(False, "--json", help="Print the state, the job and every cell's progress as JSON."),
) -> None:
    from evalsvc.jobs.runs import lookup

    jobs, notes = open_jobs(address, reachable_without=bool(output) or "/runs/" in run)
    view = lookup(run, output, jobs, read_store())
    view.notes[:0] = notes
    if as_json:
        typer.echo(json.dumps(view.to_json(), indent=1))
        return
    print_view(view)


def open_jobs(address: str | None, reachable_without: bool):
    """The cluster's Jobs API, or (None, [why]) when there is no address, or the head is unreachable but the
    output can still answer. A token problem is always an error: the user can fix it."""
    from evalsvc.errors import SystemError_
    from evalsvc.jobs.client import connect_jobs, resolve_address

    url = resolve_address(address)
    if url is None:
        return None, []
    try:
        return connect_jobs(url), []
    except SystemError_ as e:
        if not reachable_without:
            raise
        return None, [f"{e.message}; showing what the output holds"]


def read_store():
    """Run documents are read with the S3 settings of this environment (AWS_* variables or the AWS chain)."""
    from evalsvc.store.control import ControlStore
    from evalsvc.store.uri import S3Conn

    return ControlStore(S3Conn.from_options(None))


def print_view(view) -> None:
    console = Console(highlight=False)
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(view.state, "cyan")
    line = f"run [bold]{escape(view.run_id)}[/bold]: [{colour}]{view.state}[/{colour}]"
    if view.job:
        line += f"  (Ray job {view.job['status']}: {escape(view.job['message'] or '')})"
    console.print(line)
    progress = view.progress()
    if progress:
        console.print(f"  progress: {progress[0]}/{progress[1]} generations in {view.cells()} cells")
    if view.started:
        console.print(f"  started:  {view.started}" + (f"   finished: {view.info['finished']}" if (view.info or {}).get("finished") else ""))
    if view.layout:
        console.print(f"  output:   {escape(view.layout.uri)}")
    from evalsvc.render.progress import replica_lines, retries_line

    for i, line in enumerate(replica_lines(view.status or {})):
        console.print(("  replicas: " if i == 0 else "            ") + escape(line))
    if retries_line(view.status or {}):
        console.print(f"  redone:   {escape(retries_line(view.status or {}) or '')}")
    cells = (view.status or {}).get("cells", [])
    if cells:
        t = Table()
        for col in ("model", "benchmark", "strategy", "done", "total", "errors", "unparsed"):
            t.add_column(col, justify="right" if col in ("done", "total", "errors", "unparsed") else "left")
        for c in cells:
            t.add_row(c["model"], c["benchmark"], c["strategy"], str(c["done"]), str(c["total"]), str(c["errors"]), str(c["parse_failures"]))
        console.print(t)
    err = Console(stderr=True, highlight=False)
    for note in view.notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")


def register(app: typer.Typer) -> None:
    app.command("status", help=HELP)(status)
