"""`evalsvc submit MANIFEST --address http://HEAD:8265`: validate locally, then run the manifest as a Ray job.

Returns at once with the run id (= the job's submission id); `evalsvc status / logs / cancel RUN` follow it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from evalsvc.errors import UserError

HELP = (
    "Submit MANIFEST to a Ray cluster through the Ray Jobs API and return at once with the run id.\n\n"
    "The manifest is validated here first (exit 2 on problems, nothing is sent). The job runs "
    "`evalsvc run MANIFEST --run-id RUN --output ROOT` on the cluster, with evalsvc installed by pip at this "
    "client's version (default), taken from the cluster's image (--no-pin), or uploaded from a source checkout "
    "(--working-dir, for development). S3 credentials are never sent: the cluster resolves the manifest's "
    "${VAR} references from its own environment.\n\n"
    "The cluster token (Ray 2.60 token auth) is read from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.\n\n"
    "Examples:\n\n"
    "  evalsvc submit grid.yaml --address http://127.0.0.1:8265 --output s3://evals/runs\n\n"
    "  evalsvc submit grid.yaml --address http://127.0.0.1:8265 --working-dir . --run-id try-1 --json"
)


def submit(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file."),
    address: str | None = typer.Option(None, "--address", help="The head's dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)."),
    output: str | None = typer.Option(None, "--output", "-o", help="Output root on the cluster (s3://bucket/prefix); overrides output.uri."),
    working_dir: Path | None = typer.Option(None, "--working-dir", help="Upload this evalsvc source checkout with the job instead of pip-installing evalsvc."),
    no_pin: bool = typer.Option(False, "--no-pin", help="Use the evalsvc installed on the cluster (its image) instead of pip-installing this version."),
    run_id: str | None = typer.Option(None, "--run-id", help="Run id (default: <name>-<time>-<random>); also the job's submission id."),
    skip_data_check: bool = typer.Option(False, "--skip-data-check", help="Validate the manifest only, not its benchmark data (when only the cluster can read it)."),
    as_json: bool = typer.Option(False, "--json", help="Print {run_id, job_id, address, output_uri} as JSON."),
) -> None:
    from evalsvc.jobs.client import connect_jobs
    from evalsvc.jobs.submission import build_submission, check_run_id
    from evalsvc.jobs.submission import submit as send
    from evalsvc.manifest.load import load_manifest
    from evalsvc.pipeline.lifecycle import new_run_id
    from evalsvc.plan.grid import build_plan, data_conn

    if working_dir is not None and no_pin:
        raise UserError("--working-dir and --no-pin: choose one (--working-dir already uses the uploaded source)")
    m = load_manifest(manifest)
    if not skip_data_check:
        build_plan(m, data_conn(m))  # the same checks as `evalsvc validate`, before anything reaches the cluster
    run_id = check_run_id(run_id) if run_id else new_run_id(m.name)
    jobs = connect_jobs(address)
    with tempfile.TemporaryDirectory(prefix="evalsvc-submit-") as staging:
        sub = build_submission(manifest, m, Path(staging), run_id, output, working_dir, pin=not no_pin)
        job_id = send(jobs, sub)
    result = {"run_id": run_id, "job_id": job_id, "address": jobs.address, "output_uri": sub.layout.uri}
    if as_json:
        typer.echo(json.dumps(result))
        return
    console = Console(highlight=False)
    console.print(f"[green]submitted[/green] run [bold]{escape(run_id)}[/bold] (job {escape(job_id)}) to {escape(jobs.address)}")
    console.print(f"  output:  {escape(sub.layout.uri)}")
    console.print(f"  status:  evalsvc status {escape(run_id)} --address {escape(jobs.address)}")
    console.print(f"  logs:    evalsvc logs {escape(run_id)} --address {escape(jobs.address)} --follow")
    if not sub.output_root.startswith("s3://"):
        console.print("[yellow]note:[/yellow] the output is a local folder: it is a path on the cluster's nodes, not on this machine")


def register(app: typer.Typer) -> None:
    app.command("submit", help=HELP)(submit)
