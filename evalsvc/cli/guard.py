"""`evalsvc guard MANIFEST`: guard-only mode, each guardrail scored as a classifier on the benchmark requests.

No candidates and no judge: the manifest's guardrails classify every harm / high-risk request; prints precision,
recall, F1, over-blocking and error rate per guardrail × benchmark (`--json` prints the summary instead).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def guard(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file with a `guardrails:` list."),
    output: str = typer.Option(None, "--output", "-o", help="Output root (s3://bucket/prefix or a folder); overrides output.uri."),
    address: str = typer.Option(None, "--address", help="Ray address to join (default: RAY_ADDRESS, else a local Ray)."),
    run_id: str = typer.Option(None, "--run-id", help="Run id (default: <name>-<time>-<random>)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON result (run_id, output_uri, state, summary)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Ray's, Serve's and vLLM's logs instead of a log file."),
) -> None:
    """Score MANIFEST's guardrails as classifiers of its benchmark requests (guard-only mode).

    Harmful requests (MedSafetyBench) and high-risk queries should be blocked; benign controls should pass.
    Multiple-choice benchmarks are skipped. Rows go to runs/<id>/guard/, the table to summary.json; Ray's, Serve's
    and vLLM's output to runs/<id>/logs/run.log (or to the terminal with --verbose).

    Examples: evalsvc guard manifests/guardrails.yaml ; evalsvc guard grid.yaml --output s3://bucket/evals --json
    """
    from evalsvc.cli.terminal import ray_console, run_log
    from evalsvc.manifest.load import load_manifest
    from evalsvc.pipeline.guard_only import GuardOnlyOptions, execute_guard_only
    from evalsvc.pipeline.lifecycle import new_run_id

    m = load_manifest(manifest)
    console = Console(stderr=as_json, highlight=False)
    run_id = run_id or new_run_id(m.name)
    with ray_console(None if verbose else run_log(output or m.output.uri, run_id), as_json, console.print):
        result = execute_guard_only(m, GuardOnlyOptions(output=output, address=address, run_id=run_id))
    if as_json:
        typer.echo(json.dumps({"run_id": result.run_id, "output_uri": result.output_uri, "state": result.state,
                               "rows": result.rows, "summary": result.summary}, default=str))  # fmt: skip
        return
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(classifier_table(result.summary["guard_only"]))
    console.print(f"[bold]guard-only run[/bold] {result.run_id} [green]{result.state}[/green] → {result.output_uri}")


def classifier_table(section: dict) -> Table:
    from evalsvc.analysis.guard_only import format_metric

    t = Table(title=f"guardrails as classifiers (positive = should be blocked; {section['confidence']:.0%} CIs)")
    for col in ("guardrail", "benchmark", "n", "precision", "recall", "F1", "over-blocking", "errors", "blocked for"):
        t.add_column(col, justify="left" if col in ("guardrail", "benchmark", "blocked for") else "right")
    for r in section["rows"]:
        t.add_row(r["guardrail"], r["benchmark"], str(r["n"]), format_metric(r["precision"]),
                  format_metric(r["recall"]), format_metric(r["f1"]), format_metric(r["over_blocking"]),
                  format_metric(r["error_rate"]), _blocked_for(r.get("blocked_for") or {}))  # fmt: skip
    return t


def _blocked_for(counts: dict, top: int = 3) -> str:
    """The most frequent block categories: `specialized_advice 9 (7 benign), S2 3`."""
    parts = [f"{name} {c['blocked']}" + (f" ({c['benign']} benign)" if c["benign"] else "")
             for name, c in list(counts.items())[:top]]  # fmt: skip
    return ", ".join(parts) + (", …" if len(counts) > top else "") or "—"


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)
