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
    from evalsvc.engines.fit import check_fit
    from evalsvc.judge.probes import probe_plan
    from evalsvc.manifest.load import load_manifest
    from evalsvc.plan.grid import build_plan, data_conn

    m = load_manifest(manifest)
    plan = build_plan(m, data_conn(m))
    t, probes = plan.totals(), probe_plan(plan)
    console = Console(highlight=False)
    console.print(
        f"[green]valid:[/green] {t['cells']} cells, {t['generations']} generations, {t['judge_calls']} judge calls"
        + (f" ({t['criteria']} rubric criteria to grade)" if t["criteria"] else "")
        + (f" (+ {probes['calls']} judge-health probe calls)" if probes["calls"] else "")
    )
    print_fit(console, check_fit(plan))


def probe_line(probes: dict) -> str | None:
    """The plan's judge-health line: probes per judged kind and the judge calls they add (None: nothing judged)."""
    if not probes["counts"]:
        return None
    if not probes["per_kind"]:
        return ("[yellow]judge health: probes off (judge.probes: 0): nothing checks that the judge tells answers "
                "apart[/yellow]")
    kinds = ", ".join(f"{k} {n}" for k, n in probes["counts"].items())
    return (f"[bold]judge health[/bold]: known-answer probes {kinds} × {probes['voters']} judge(s) → "
            f"{probes['calls']} probe calls beside the grid (judge.probes: {probes['per_kind']})")


def print_fit(console: Console, report) -> None:
    """Prompts that cannot fit their model's max_model_len (yellow), and models whose prompts were not counted."""
    from rich.markup import escape

    for line in report.warnings():
        console.print(f"[yellow]warning:[/yellow] {escape(line)}")
    for model, why in report.unchecked.items():
        console.print(f"[dim]prompt lengths of {escape(model)} not checked: {escape(why)}[/dim]")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
