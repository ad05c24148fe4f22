"""`evalsvc run MANIFEST`: execute the whole grid on Ray (local by default) with live per-cell progress.

Ends with the summary table and the output location; `--json` prints a machine-readable result instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from evalsvc.cli.terminal import ray_console, run_log
from evalsvc.render.progress import ProgressView


def run(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file."),
    output: str = typer.Option(None, "--output", "-o", help="Output root (s3://bucket/prefix or a folder); overrides output.uri."),
    address: str = typer.Option(None, "--address", help="Ray address to join (default: RAY_ADDRESS, else a local Ray)."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: <name>-<time>-<random>)."),
    dev_s3: bool = typer.Option(False, "--dev-s3", help="Start a local SeaweedFS S3 server and write the run there."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON result (run_id, output_uri, state, summary)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Ray's, Serve's and vLLM's logs instead of a log file."),
) -> None:
    """Run MANIFEST: candidates on vLLM via Ray Data, the judge on Ray Serve, records as Parquet.

    The terminal shows the plan, live per-cell progress and the summary; Ray's, Serve's and vLLM's output goes to
    runs/<id>/logs/run.log (a local file named at the start when the output is s3://), or to the terminal with --verbose.

    Examples: evalsvc run manifests/quickstart.yaml ; evalsvc run grid.yaml --output s3://bucket/evals --address ray://head:10001
    """
    from evalsvc.manifest.load import load_manifest
    from evalsvc.pipeline.lifecycle import new_run_id
    from evalsvc.pipeline.run import RunOptions, execute

    m = load_manifest(manifest)
    console = Console(stderr=as_json, highlight=False)
    devs3 = _start_dev_s3(console) if dev_s3 else None
    if devs3 is not None:
        output = output or "s3://evalsvc-dev/runs-root"
        m = m.model_copy(update={"output": m.output.model_copy(update={"s3": m.output.s3.model_copy(update={"endpoint_url": None})})})
    run_id = run_id or new_run_id(m.name)
    log = None if verbose else run_log(output or m.output.uri, run_id)
    try:
        with ray_console(log, as_json, console.print) as term:
            shown = Console(file=term.err if as_json else term.out, highlight=False)
            with ProgressView(shown, live=term.isatty() and not (as_json or verbose)) as view:
                opts = RunOptions(output=output, address=address, run_id=run_id, on_status=view.update)
                result = execute(m, opts)
    finally:
        if devs3 is not None:
            devs3.stop()
    if as_json:
        print_health(console, result.summary, table=False)  # the console is stderr: stdout keeps the JSON alone
        typer.echo(json.dumps({"run_id": result.run_id, "output_uri": result.output_uri, "state": result.state,
                               "status": result.status, "summary": result.summary}, default=str))
        return
    _print_summary(console, result.summary_table)
    print_health(console, result.summary)
    console.print(f"[bold]run[/bold] {result.run_id} [green]{result.state}[/green] → {result.output_uri}")


def _print_summary(console: Console, table) -> None:
    if table is None:
        return
    from evalsvc.render.format import rich_tables, select_grouping, summary_sections

    for t in rich_tables(summary_sections(select_grouping(table, None), short_flags=True)):
        console.print(t)


def print_health(console: Console, doc: dict | None, table: bool = True) -> None:
    """The judge-health table, then one red line per flagged judge or juror (its scores are not evidence)."""
    from rich.markup import escape

    from evalsvc.render.format import rich_tables
    from evalsvc.render.health_format import (
        health_notes,
        health_sections,
        health_warnings,
    )

    if table:
        for t in rich_tables(health_sections(doc), flagged=False):
            console.print(t)
    for note in health_notes(doc):
        console.print(f"[dim]judge health: {escape(note)}[/dim]")
    for line in health_warnings(doc):
        console.print(f"[bold red]⚠ {escape(line)}[/bold red]")


def _start_dev_s3(console: Console):
    from evalsvc.store.devs3 import DevS3

    data = Path(os.environ.get("EVALSVC_DEV_S3_DIR", Path.home() / ".cache" / "evalsvc" / "dev-s3"))
    s3 = DevS3(data)
    s3.start()
    s3.create_bucket("evalsvc-dev")
    os.environ.update(s3.env())
    console.print(f"dev S3 at {s3.endpoint_url} (data in {data}; credentials in the process env only)")
    return s3


def register(app: typer.Typer) -> None:
    app.command("run")(run)
