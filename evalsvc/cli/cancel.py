"""`evalsvc cancel RUN --address http://HEAD:8265`: stop a submitted run and mark it cancelled in its output.

Records written before the stop stay; the driver may die before it can write its state, so this command does.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape

from evalsvc.errors import EvalsvcError

HELP = (
    "Stop a submitted run's Ray job and mark the run \"cancelled\" in its run.json and status.json. Records "
    "already written stay readable (`evalsvc results` summarises them). The output root comes from --output, "
    "EVALSVC_OUTPUT or the job's metadata.\n\n"
    "Examples:\n\n"
    "  evalsvc cancel quickstart-20261122-101500-ab12 --address http://127.0.0.1:8265\n\n"
    "  evalsvc cancel quickstart-20261122-101500-ab12 --address http://127.0.0.1:8265 --wait 120 --json"
)


def cancel(
    run: str = typer.Argument(..., help="Run id, or run URI (…/runs/<run_id>)."),
    address: str | None = typer.Option(None, "--address", help="The head's dashboard URL, http://HEAD:8265 (default: RAY_API_SERVER_ADDRESS)."),
    output: str | None = typer.Option(None, "--output", envvar="EVALSVC_OUTPUT", help="Output root holding runs/ (default: from the job)."),
    wait: float = typer.Option(60.0, "--wait", min=0.0, help="Seconds to wait for the job to stop before marking the run."),
    as_json: bool = typer.Option(False, "--json", help="Print {run_id, stopped, job_status, marked, output_uri} as JSON."),
) -> None:
    from evalsvc.jobs.client import JobNotFound, connect_jobs
    from evalsvc.jobs.runs import parse_run
    from evalsvc.jobs.submission import META_OUTPUT, normalize_root
    from evalsvc.store.layout import RunLayout

    run_id, root = parse_run(run, output)
    jobs = connect_jobs(address)
    job = jobs.info(run_id)
    if job is None:
        raise JobNotFound(run_id, jobs.address)
    notes: list[str] = []
    job_root = (job.metadata or {}).get(META_OUTPUT)
    if root and job_root and normalize_root(root) != job_root:
        notes.append(f"the job writes under {job_root}, not {root}: marking it there")
    root = job_root or root  # where the run really writes wins over a stale --output / EVALSVC_OUTPUT
    stopped = jobs.stop(run_id)
    final = jobs.wait_ended(run_id, wait) if stopped else str(job.status)
    layout = RunLayout(root, run_id) if root else None
    marked = _mark(stopped, final, layout, notes)
    if stopped and final not in ("STOPPED", "FAILED", "SUCCEEDED"):
        notes.append(f"the job had not stopped after {wait:g} s (still {final}); check `evalsvc status {run_id}`")
    _report(run_id, stopped, final, marked, layout, notes, as_json)


def _mark(stopped: bool, final: str, layout, notes: list[str]) -> bool:
    """Write the cancelled state where the run writes; say in `notes` why not when it cannot."""
    from evalsvc.cli.status import read_store
    from evalsvc.jobs.runs import mark_cancelled
    from evalsvc.pipeline.progress import now

    if not stopped:
        notes.append(f"the job had already ended ({final}): nothing to stop, the run is left as it is")
    elif layout is None:
        notes.append("no output root known (pass --output): run.json / status.json not marked")
    else:
        try:
            return mark_cancelled(read_store(), layout, now())
        except EvalsvcError as e:
            notes.append(f"could not mark the run cancelled: {e.message}")
    return False


def _report(run_id: str, stopped: bool, final: str, marked: bool, layout, notes: list[str], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"run_id": run_id, "stopped": stopped, "job_status": final, "marked": marked,
                               "output_uri": layout.uri if layout else None, "notes": notes}))
        return
    console = Console(highlight=False)
    if stopped:
        console.print(f"[yellow]cancelled[/yellow] run [bold]{escape(run_id)}[/bold]: Ray job {final}")
        if layout is not None:
            console.print(f"  records written so far stay under {escape(layout.records)}")
    err = Console(stderr=True, highlight=False)
    for note in notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")


def register(app: typer.Typer) -> None:
    app.command("cancel", help=HELP)(cancel)
