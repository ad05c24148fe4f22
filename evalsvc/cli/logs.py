"""`evalsvc logs RUN --address http://HEAD:8265`: the driver output of a submitted run, or a live tail of it.

The logs live on the cluster (Ray keeps them with the job); the records and status live in the output.
"""

from __future__ import annotations

import sys

import typer

HELP = (
    "Print the logs of a submitted run's Ray job (the output of `evalsvc run` on the cluster); --follow keeps "
    "streaming until the job ends.\n\n"
    "Examples:\n\n"
    "  evalsvc logs quickstart-20261122-101500-ab12 --address http://127.0.0.1:8265\n\n"
    "  evalsvc logs quickstart-20261122-101500-ab12 --address http://127.0.0.1:8265 --follow"
)


def logs(
    run: str = typer.Argument(..., help="Run id (the job's submission id), or run URI (…/runs/<run_id>)."),
    address: str | None = typer.Option(None, "--address", help="The head's dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines until the job ends."),
) -> None:
    from evalsvc.jobs.client import connect_jobs
    from evalsvc.jobs.runs import parse_run

    run_id, _ = parse_run(run, None)
    jobs = connect_jobs(address)
    if follow:
        jobs.follow(run_id, _write)
    else:
        _write(jobs.logs(run_id))


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.command("logs", help=HELP)(logs)
