"""The `evalsvc` console script: one Typer app, one module per subcommand, errors as one red line per problem.

User mistakes exit 2, system failures exit 1; `--debug` (or EVALSVC_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from evalsvc.errors import EvalsvcError

app = typer.Typer(
    name="evalsvc",
    help="Batch evaluation of the medical safety of LLMs on Ray: validate a manifest, plan it, run it, read results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

# "module:attribute" of each subcommand, imported when the CLI starts (each module imports only light things
# at module level). A command module registers itself on `app` via `register(app)`.
COMMANDS = [
    "evalsvc.cli.validate",
    "evalsvc.cli.plan",
    "evalsvc.cli.datasets",
    "evalsvc.cli.models",
    "evalsvc.cli.run",
    "evalsvc.cli.guard",
    "evalsvc.cli.judge",
    "evalsvc.cli.results",
    "evalsvc.cli.compare",
    "evalsvc.cli.report",
    "evalsvc.cli.submit",
    "evalsvc.cli.status",
    "evalsvc.cli.logs",
    "evalsvc.cli.cancel",
    "evalsvc.cli.list_runs",
    "evalsvc.cli.bench",
]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    if debug:
        os.environ["EVALSVC_DEBUG"] = "1"


def _load_commands() -> None:
    for mod in COMMANDS:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:  # a command not written yet on this branch
                continue
            raise
        module.register(app)


def main() -> None:
    _load_commands()
    try:
        rc = app(standalone_mode=False)  # returns (not raises) a command's typer.Exit code
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except EvalsvcError as e:
        if os.environ.get("EVALSVC_DEBUG") == "1":
            raise
        for line in e.lines():
            err_console.print(f"[red]error:[/red] {escape(line)}", markup=True, highlight=False)
        sys.exit(e.exit_code)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except Exception as e:  # click usage errors and the unexpected
        # typer vendors its own click, so recognise click's exceptions by shape rather than by class
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            sys.exit(e.exit_code or 2)
        if os.environ.get("EVALSVC_DEBUG") == "1":
            raise
        err_console.print(f"[red]error:[/red] {type(e).__name__}: {e} (run with --debug for the traceback)")
        sys.exit(1)


if __name__ == "__main__":
    main()
