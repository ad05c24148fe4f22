"""`evalsvc judge rescore RUN`: re-judge a run's stored generations with another judge or rubric, never regenerating;
`evalsvc judge calibrate MANIFEST` (in judge_calibrate.py): score the judge's calibration slice.

A rescore is a new run whose records reuse the source run's generations and carry the new judgements.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

from evalsvc.cli.judge_calibrate import HELP as CALIBRATE_HELP
from evalsvc.cli.judge_calibrate import calibrate

judge_app = typer.Typer(help="Judge operations: rescore stored runs, calibrate the judge.", no_args_is_help=True)
judge_app.command("calibrate", help=CALIBRATE_HELP)(calibrate)


@judge_app.command("rescore")
def rescore(
    run: str = typer.Argument(..., help="Run id (with --output) or run URI …/runs/<id>."),
    output: str = typer.Option(None, "--output", "-o", envvar="EVALSVC_OUTPUT", help="Output root of the run."),
    judge_source: str = typer.Option(None, "--judge-source", help="Open judge checkpoint served on Ray Serve."),
    judge_url: str = typer.Option(None, "--judge-url", help="External OpenAI-compatible judge base URL (…/v1)."),
    judge_model_name: str = typer.Option(None, "--judge-model-name", help="Model name at --judge-url."),
    judge_api_key: str = typer.Option(None, "--judge-api-key", help="Env reference like ${JUDGE_API_KEY}."),
    rubric: list[str] = typer.Option([], "--rubric", help="KIND=RUBRIC, e.g. harm=msb-harm or harm=path/RUBRIC.txt."),
    address: str = typer.Option(None, "--address", help="Ray address to join (default: a local Ray)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON result."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Ray's, Serve's and vLLM's logs instead of a log file."),
) -> None:
    """Re-judge the generations of RUN into a new run (0 generations; judge calls only).

    Ray's, Serve's and vLLM's output goes to the new run's logs/run.log (or to the terminal with --verbose).

    Example: evalsvc judge rescore quickstart-20261122-0512-ab12 -o ./output --rubric harm=../shared/data/medsafetybench/RUBRIC.txt
    """
    from evalsvc.cli.terminal import ray_console, run_log
    from evalsvc.errors import UserError
    from evalsvc.manifest.load import validate_manifest
    from evalsvc.pipeline.lifecycle import new_run_id
    from evalsvc.pipeline.run import RunOptions, execute
    from evalsvc.store.control import ControlStore
    from evalsvc.store.layout import resolve_run
    from evalsvc.store.uri import S3Conn

    layout = resolve_run(run, output)
    conn = S3Conn.from_options(None)
    doc = ControlStore(conn).get_json(layout.run_json)
    if doc is None:
        raise UserError(f"RUN {run!r}: no run.json at {layout.run_json}; check the run id and --output")
    manifest = dict(doc["manifest"])
    judge = dict(manifest.get("judge") or {})
    if judge_source:
        judge.update(model={**(judge.get("model") or {}), "source": judge_source}, url=None, model_name=None,
                     members=[])  # one judge replaces a jury  # fmt: skip
    if judge_url:
        judge.update(model=None, url=judge_url, model_name=judge_model_name, api_key=judge_api_key, members=[])
    for spec in rubric:
        kind, sep, ref = spec.partition("=")
        if not sep or kind not in ("harm", "high_risk", "rubric"):
            raise UserError(f"--rubric {spec!r}: write KIND=RUBRIC with KIND harm, high_risk or rubric")
        judge.setdefault("rubrics", {})[kind] = ref
    manifest["judge"] = {k: v for k, v in judge.items() if v is not None}
    m = validate_manifest(manifest, source=f"{layout.run_json} (rescore)")
    console = Console(stderr=as_json, highlight=False)
    run_id = new_run_id(m.name)
    with ray_console(None if verbose else run_log(layout.root, run_id), as_json, console.print):
        opts = RunOptions(output=layout.root, address=address, run_id=run_id, cache_records=[layout.records], generate=False)
        result = execute(m, opts)
    reuse = result.info.get("reuse", {})
    if as_json:
        typer.echo(json.dumps({"run_id": result.run_id, "output_uri": result.output_uri, "source_run": layout.run_id,
                               "state": result.state, "reuse": reuse}))
        return
    console.print(
        f"rescored {layout.run_id} → run {result.run_id} ({result.state}): {reuse.get('judge_calls', 0)} judge calls, "
        f"{reuse.get('reused_generations', 0)} generations reused, 0 generated → {result.output_uri}"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(judge_app, name="judge")
