"""`evalsvc compare`: paired tests between strategies (within a model) or models (within a strategy) of a run.

Binary outcomes use (clustered) McNemar, 1-5 scores Wilcoxon on item means; p-values are Holm-adjusted across the report.
"""

from __future__ import annotations

import json

import typer

HELP = (
    "Paired comparisons of a run against a baseline: strategy vs strategy within each model (pairs matched on "
    "item_id + sample_index) or model vs model within each strategy (pairs matched on item_id). Binary outcomes "
    "(harmful = score >= 4, correct, unsafe_actionable, over-refusal) use McNemar's test with the "
    "discordant-pair odds ratio; 1-5 scores the Wilcoxon signed-rank test on per-item mean differences. The item "
    "is the unit: with several samples per item, binary outcomes use the clustered McNemar (Durkalski et al. "
    "2003; exact sign-flip over items below 25 discordant items), and each comparison reports n_items. "
    "Effects are other − baseline with 95% adjusted Wald CIs; p-values are Holm-adjusted across every comparison "
    "printed. "
    "Pairs with a missing, errored or unparsed side are dropped and counted.\n\n"
    "Without --baseline: strategies against 'basic' (or the first strategy) and, with several models, models "
    "against the first model. In a run with guardrails, those pairs stay within one guardrail arm, and each "
    "guardrail arm is compared with the unguarded 'none' arm of the same model × strategy on the same generations "
    "(item_id + sample_index); --baseline none asks for those only.\n\n"
    "Example:\n\n"
    "  evalsvc compare 2026-11-22-msb --output s3://evals/prod --baseline basic --json"
)


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(compare)


def compare(
    run: str = typer.Argument(..., help="Run id (with --output) or run URI (…/runs/<run_id>, local or s3://)."),
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/."),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        help="A strategy name (compare strategies), a model name (compare models) or a guardrail arm (e.g. none).",
    ),
    alpha: float = typer.Option(
        0.05, "--alpha", min=0.0, max=1.0, help="Family-wise error rate for the Holm-adjusted significance mark."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    from evalsvc.analysis.compare import compare_run
    from evalsvc.analysis.health_read import health_section
    from evalsvc.errors import UserError
    from evalsvc.render import format as fmt
    from evalsvc.render.health_format import flagged_kinds
    from evalsvc.store.read import open_run, read_small, records_dataset

    src = open_run(run, output)
    comps = compare_run(read_small(records_dataset(src)), baseline, alpha=alpha)
    health = health_section(src)
    flagged = flagged_kinds(health)  # a comparison scored by a flagged judge compares that judge's noise
    if as_json:
        rows = [{**c.to_dict(), "judge_flags": flagged.get(c.kind, [])} for c in comps]
        typer.echo(json.dumps({"run_id": src.layout.run_id, "alpha": alpha, "comparisons": rows}, indent=1))
        return
    if not comps:
        raise UserError(
            "nothing to compare: the run has one model and one strategy (or --baseline has no partner cells)"
        )
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"paired comparisons of {src.layout.run_id} (* = significant at {alpha:g} after Holm)",
        title_justify="left",
        header_style="bold",
    )
    for h in fmt.COMPARE_HEADER:
        table.add_column(h, overflow="fold")
    for row, c in zip(fmt.comparison_rows(comps), comps):
        if c.kind in flagged:
            row[0] += f" {fmt.FLAG} judge"
        table.add_row(*row, style="red" if c.kind in flagged else "bold" if c.significant else None)
    console = Console(highlight=False)
    console.print(table)
    if any(c.kind in flagged for c in comps):
        _judge_warning(console, health)


def _judge_warning(console, health) -> None:
    from rich.markup import escape

    from evalsvc.render.format import FLAG
    from evalsvc.render.health_format import health_warnings

    console.print(f"[bold red]{FLAG} judge: comparisons marked '{FLAG} judge' rest on a judge whose health checks "
                  "failed; their differences are not evidence[/bold red]")  # fmt: skip
    for line in health_warnings(health):
        console.print(f"[red]  {escape(line)}[/red]")
