"""`evalsvc judge calibrate MANIFEST`: score the manifest's calibration slice with its judge (or every juror of a jury)
and show how far each agrees with the reference labels, without running the grid.
"""

from __future__ import annotations

import json

import typer

HELP = (
    "Score the labelled file of judge.calibration with the manifest's judge (each juror and the jury's verdict) "
    "and print, per judge: rows, rows parsed, exact agreement, within-1 agreement (harm), κ (quadratic-weighted "
    "for 1-5 scores, Cohen's for labels), the confusion matrix and the bias (judge mean − reference mean, 95% "
    "adjusted Wald CI). Open judges are served on Ray Serve for the command and removed after it; Ray's, Serve's and "
    "vLLM's output goes to calibrate.log in the --output folder (or the log folder; the terminal with --verbose).\n\n"
    "Example:\n\n"
    "  evalsvc judge calibrate manifests/jury.yaml --output ./calibration --json"
)


def calibrate(
    manifest: str = typer.Argument(..., help="Manifest file with judge.calibration set."),
    output: str = typer.Option(
        None, "--output", "-o", help="Folder (local or s3://) for judgements.parquet + calibration.json."
    ),
    address: str = typer.Option(None, "--address", help="Ray address to join (default: a local Ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print the calibration section as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Ray's, Serve's and vLLM's logs instead of a log file."),
) -> None:
    from evalsvc.analysis.calibration import calibration_section
    from evalsvc.errors import UserError
    from evalsvc.judge.calibration import calibrate as score_slice
    from evalsvc.judge.calibration import load_slice, write_calibration
    from evalsvc.manifest.load import load_manifest
    from evalsvc.store.uri import S3Conn

    m = load_manifest(manifest)
    if m.judge is None or m.judge.calibration is None:
        raise UserError(f"{manifest}: judge.calibration is not set; add judge.calibration: {{path: FILE, kind: harm}} "
                        "(a JSONL/CSV/Parquet file of question, response, label)")  # fmt: skip
    conn = S3Conn.from_options(m.output.s3)
    items = load_slice(m.judge, conn)  # file problems surface before any judge is deployed
    from rich.console import Console

    from evalsvc.cli.terminal import ray_console

    with ray_console(None if verbose else _log(output), as_json, Console(stderr=True, highlight=False).print):
        table = _score(m, items, address, score_slice)
    section = calibration_section(table)
    if output:
        write_calibration(table, output, conn)
        _write_json(output, section, conn)
    if as_json:
        typer.echo(json.dumps(section, indent=1))
        return
    _print(section, output)


def _score(m, items, address: str | None, score_slice):
    from evalsvc.judge import setup as judge_setup
    from evalsvc.pipeline.lifecycle import lifecycle

    served = any(j.model is not None for j in m.judge.jurors)  # served judges need Ray; external URLs do not
    with lifecycle(address, needs_ray=served) as run:
        target = judge_setup.prepare_judge(m.judge, cpu=m.resources.gpus_per_replica == 0)
        run.on_close(lambda: judge_setup.teardown(target))
        return score_slice(m.judge, target, items)


def _log(output: str | None):
    """The command's console log: calibrate.log in a local --output folder, else one named by the time in the log
    folder (see `evalsvc run`)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from evalsvc.cli.terminal import log_dir
    from evalsvc.store.uri import is_s3

    if output and not is_s3(output):
        return Path(output).expanduser().resolve() / "calibrate.log"
    return log_dir() / f"calibrate-{datetime.now(UTC):%Y%m%d-%H%M%S}.log"


def _write_json(folder: str, section: dict, conn) -> None:
    from evalsvc.store.uri import filesystem, join

    fs, base = filesystem(folder, conn)
    with fs.open_output_stream(join(base, "calibration.json")) as f:
        f.write(json.dumps(section, indent=1).encode())


def _print(section: dict, output: str | None) -> None:
    import sys

    from rich.console import Console

    from evalsvc.render.format import rich_tables
    from evalsvc.render.judge_format import calibration_sections

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for table in rich_tables(calibration_sections(section), flagged=False):
        console.print(table)
    if output:
        console.print(f"wrote {output}/judgements.parquet and calibration.json")
