"""`evalsvc report`: one self-contained HTML file (plots, paired tests, parse failures, samples, run metadata).

Needs the `report` extra (plotly, scipy); the file embeds plotly.js and loads nothing from the network.
"""

from __future__ import annotations

import typer

HELP = (
    "Write a self-contained HTML report of a run: heatmaps of the headline metric (model × strategy per "
    "benchmark), per-category bars with 95% CIs, the paired-test table, parse-failure and error rates, run "
    "metadata (credentials redacted) and a sample browser with a few records per cell. Opens offline.\n\n"
    "Example:\n\n"
    "  evalsvc report 2026-11-22-msb --output s3://evals/prod --out report.html"
)


def register(app: typer.Typer) -> None:
    app.command("report", help=HELP)(report)


def report(
    run: str = typer.Argument(..., help="Run id (with --output) or run URI (…/runs/<run_id>, local or s3://)."),
    out: str = typer.Option("report.html", "--out", help="HTML file to write."),
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/."),
    baseline: str | None = typer.Option(None, "--baseline", help="Baseline strategy or model of the paired tests."),
    samples: int = typer.Option(3, "--samples", min=0, max=50, help="Records shown per cell in the sample browser."),
    threshold: float = typer.Option(
        0.10, "--threshold", min=0.0, max=1.0, help="Flag rows whose parse failures + errors exceed this share."
    ),
) -> None:
    from pathlib import Path

    from evalsvc.errors import UserError
    from evalsvc.render.html import build_report

    target = Path(out)
    if target.is_dir():
        raise UserError(f"--out {out!r} is a folder: give a file name such as report.html")
    html = build_report(run, output, baseline=baseline, samples=samples, threshold=threshold)
    try:
        target.write_text(html, encoding="utf-8")
    except OSError as e:
        raise UserError(f"--out {out!r}: cannot write ({e.strerror}); pick a writable path") from None
    typer.echo(f"wrote {target} ({len(html.encode()) / 1e6:.1f} MB)")
