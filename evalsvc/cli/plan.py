"""`evalsvc plan MANIFEST`: show the grid of cells, the engines (one load per checkpoint) and the totals.

`--json` prints the same machine-readable plan that `run` records in run.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def plan(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Expand MANIFEST into cells (model × benchmark × strategy) with item counts and totals.

    Examples: evalsvc plan manifests/quickstart.yaml ; evalsvc plan manifests/medsafety-sweep.yaml --json
    """
    from evalsvc.manifest.load import load_manifest
    from evalsvc.manifest.plan import build_plan, data_conn

    m = load_manifest(manifest)
    p = build_plan(m, data_conn(m))
    if as_json:
        typer.echo(json.dumps(p.to_json(), indent=2))
        return
    console = Console(highlight=False)
    table = Table(title=f"plan: {p.manifest.name}")
    for col in ("cell", "model", "benchmark", "kind", "strategy", "items", "generations", "judge calls"):
        table.add_column(col, justify="right" if col in ("items", "generations", "judge calls") else "left")
    for c in p.cells:
        table.add_row(
            c.cell_id, c.model, c.benchmark, c.kind, c.strategy, str(c.n_items), str(c.generations), str(c.judge_calls)
        )
    console.print(table)
    for engine, served in p.engines().items():
        m = p.model(engine)
        console.print(f"engine [bold]{engine}[/bold] ({m.source}, {m.replicas} replica(s)) serves: {', '.join(served)}")
    t = p.totals()
    console.print(
        f"[bold]totals[/bold]: {t['cells']} cells, {t['generations']} generations, {t['judge_calls']} judge calls, "
        f"{t['mcq_parsed']} MCQ answers parsed without a judge, {t['engine_loads']} engine load(s), "
        f"~{t['est_prompt_tokens']:,} prompt tokens, ≤{t['max_completion_tokens']:,} completion tokens"
    )


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
