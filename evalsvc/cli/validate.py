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
    from evalsvc.plan.grid import build_plan, data_conn

    m = load_manifest(manifest)
    plan = build_plan(m, data_conn(m))
    t = plan.totals()
    Console(highlight=False).print(
        f"[green]valid:[/green] {t['cells']} cells, {t['generations']} generations, {t['judge_calls']} judge calls"
        + (f" ({t['criteria']} rubric criteria to grade)" if t["criteria"] else "")
    )


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
