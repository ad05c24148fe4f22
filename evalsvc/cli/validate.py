"""`evalsvc validate MANIFEST`: check a manifest and its benchmarks without a cluster.

Exit 0 with "valid: N cells, M generations"; exit 2 with one line per problem otherwise.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console


def validate(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file."),
) -> None:
    """Validate MANIFEST and load its benchmarks (no Ray, no cluster needed).

    Example: evalsvc validate manifests/quickstart.yaml
    """
    from evalsvc.manifest.load import load_manifest
    from evalsvc.manifest.plan import build_plan, data_conn

    from evalsvc.engines.fit import check_fit

    m = load_manifest(manifest)
    plan = build_plan(m, data_conn(m))
    t = plan.totals()
    console = Console(highlight=False)
    console.print(
        f"[green]valid:[/green] {t['cells']} cells, {t['generations']} generations, {t['judge_calls']} judge calls"
        + (f" + {t['probe_calls']} judge probe calls" if t.get("probe_calls") else "")
    )
    print_fit(console, check_fit(plan))


def print_fit(console: Console, report) -> None:
    """Prompts that cannot fit their model's max_model_len (yellow), and models whose prompts were not counted."""
    from rich.markup import escape

    for line in report.warnings():
        console.print(f"[yellow]warning:[/yellow] {escape(line)}")
    for model, why in report.unchecked.items():
        console.print(f"[dim]prompt lengths of {escape(model)} not checked: {escape(why)}[/dim]")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
