"""`evalsvc results`: summarise a run's records (metric, 95% CI, n, parse failures) and optionally gate on them.

Reads only the small record columns, cell by cell, from a local folder or s3:// (AWS_* env for S3 settings).
"""

from __future__ import annotations

import json
import sys

import typer

from evalsvc.errors import UserError

HELP = (
    "Summarise a run: one row per model × benchmark × strategy (or per category with --by), each metric with "
    "its 95% CI, n, parse-failure and error rates. A row whose parse failures + errors exceed --threshold is "
    "flagged (its metrics use the parsed records only).\n\n"
    "RUN is a run id under --output (or EVALSVC_OUTPUT), or a run URI such as s3://bucket/prefix/runs/RUN_ID. "
    "S3 settings come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL_S3.\n\n"
    "--fail-if gates CI: 'TARGET.METRIC OP NUMBER' joined by and/or, TARGET a benchmark name or a kind (harm, "
    "mcq, high_risk). It is checked per model × strategy; when it holds the failing cells are printed and the "
    "exit code is 3 (1 = system failure, 2 = usage mistake). A missing value counts as failing.\n\n"
    "Runs with guardrails have a row per model × guardrail arm ('none' = unguarded) and guard metrics: "
    "blocked_rate, blocked_input, blocked_output, guard_error_rate, over_block, unsafe_after_guard, "
    "helpful_after_guard (e.g. --fail-if 'medharm.over_block > 0.3'); the gate is checked per arm.\n\n"
    "Judge health (known-answer probes, score spread, parse failures) is printed for every judged run; a red line "
    "names a flagged judge. Gate on it with judge_health.ok == 0 (some judge or juror is flagged), or "
    "judge_health.probe_agreement < 0.8, judge_health.modal_share > 0.95, judge_health.parse_fail_rate > 0.1.\n\n"
    "Examples:\n\n"
    "  evalsvc results 2026-11-22-msb --output s3://evals/prod --by principle\n\n"
    "  evalsvc results ./out/runs/r1 --markdown --fail-if 'msb.mean_harm > 2.0 or mcq.accuracy < 0.6'\n\n"
    "  evalsvc results ./out/runs/r1 --fail-if 'judge_health.ok == 0 or msb.mean_harm > 2.0'"
)


def register(app: typer.Typer) -> None:
    app.command("results", help=HELP)(results)


def results(
    run: str = typer.Argument(..., help="Run id (with --output) or run URI (…/runs/<run_id>, local or s3://)."),
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/."),
    by: str | None = typer.Option(
        None, "--by", help="Group by a category field: principle, source, aspect, category, question_type."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print summary JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (all metric columns)."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print Markdown tables."),
    fail_if: str | None = typer.Option(
        None, "--fail-if", help='Gate, e.g. "msb.mean_harm > 2.0"; exit 3 when it holds.'
    ),
    threshold: float = typer.Option(
        0.10, "--threshold", min=0.0, max=1.0, help="Flag rows whose parse failures + errors exceed this share."
    ),
) -> None:
    from evalsvc.analysis.agreement import judge_sections
    from evalsvc.analysis.gate import GateFailed, check_gate, parse_gate
    from evalsvc.analysis.summary import summarize_run, summary_json
    from evalsvc.render import format as fmt
    from evalsvc.render.judge_format import agreement_sections, calibration_sections
    from evalsvc.store.read import open_run

    if sum([as_json, as_csv, as_markdown]) > 1:
        raise UserError("choose one of --json, --csv, --markdown")
    gate = parse_gate(fail_if) if fail_if is not None else None  # syntax errors before any read
    src = open_run(run, output)
    summary = summarize_run(src, threshold=threshold)
    if summary.num_rows == 0:
        raise UserError(f"{src.layout.records}: the run has no records yet")
    rows = fmt.select_grouping(summary, by)
    judged = judge_sections(src)  # judge health; jury agreement and calibration, when the run has them
    failures = check_gate(gate, summary, fail_if or "", health=judged.get("judge_health")) if gate else []
    judge_tables = agreement_sections(judged.get("agreement")) + calibration_sections(judged.get("calibration"))
    if as_json:
        _warn_stderr(judged)
        doc = summary_json(rows, run_id=src.layout.run_id, threshold=threshold)
        typer.echo(json.dumps({**doc, **judged}, indent=1))
    elif as_csv:
        _warn_stderr(judged)
        typer.echo(fmt.csv_text(rows), nl=False)
    elif as_markdown:
        _markdown(rows, summary, judge_tables, judged)
    else:
        _print_tables(rows, summary, judge_tables, judged)
    if failures:
        raise GateFailed(f"--fail-if {fail_if!r} holds for {len(failures)} model × strategy pair(s)", failures)


def _warn_stderr(judged: dict) -> None:
    """Machine output stays clean on stdout; a flagged judge still reaches the person running the command."""
    from evalsvc.render.health_format import health_warnings

    for line in health_warnings(judged):
        typer.echo(f"warning: {line}", err=True)


def _markdown(rows, summary, judge_tables: list, judged: dict) -> None:
    from evalsvc.render import format as fmt
    from evalsvc.render.health_format import health_sections, health_warnings

    sections = fmt.summary_sections(rows) + fmt.cost_sections(summary) + judge_tables + health_sections(judged)
    typer.echo(fmt.markdown(sections))
    for line in health_warnings(judged):
        typer.echo(f"> **⚠ {line}**\n")


def _print_tables(rows, summary, judge_tables: list, judged: dict) -> None:
    from rich.console import Console

    from evalsvc.cli.run import print_health
    from evalsvc.render import format as fmt

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for table in fmt.rich_tables(fmt.summary_sections(rows, short_flags=True)):
        console.print(table)
    for table in fmt.rich_tables(fmt.cost_sections(summary) + judge_tables, flagged=False):
        console.print(table)
    for note in fmt.flag_notes(rows):
        console.print(f"[yellow]{fmt.FLAG}[/yellow] {note}", markup=True)
    print_health(console, judged)
