"""`evalsvc models prepare NAME` and `evalsvc models list`: the local models a manifest names as evalsvc://NAME.

They are built once into a cache folder ($EVALSVC_MODEL_DIR or ~/.cache/evalsvc/models), no model hub needed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

models_app = typer.Typer(
    help="Local models without a hub (evalsvc://smollm2, evalsvc://tiny): build them once, list them.",
    no_args_is_help=True,
)

_DIR_HELP = "Cache folder for prepared models (default: $EVALSVC_MODEL_DIR or ~/.cache/evalsvc/models)."


@models_app.command("prepare")
def prepare_cmd(
    name: str = typer.Argument(..., help="Which model: smollm2 (~260 MB, coherent answers) or tiny (~5 MB, random)."),
    root: Path | None = typer.Option(None, "--dir", help=_DIR_HELP),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the folder is already prepared."),
) -> None:
    """Build the local model NAME into the cache folder (skipped if already there) and print its path.

    Example: evalsvc models prepare smollm2 ; then use `source: evalsvc://smollm2` in a manifest.
    """
    from evalsvc.engines.prepare import is_prepared, prepare

    console = Console(stderr=True, highlight=False)
    was_ready = not force and is_prepared(name, root)
    path = prepare(name, root, force=force, say=lambda msg: console.print(msg, markup=False))
    if was_ready:
        console.print(f"{name}: already prepared", markup=False)
    typer.echo(str(path))


@models_app.command("list")
def list_cmd(root: Path | None = typer.Option(None, "--dir", help=_DIR_HELP)) -> None:
    """List the local models, whether each is prepared, where, and how big.

    Example: evalsvc models list
    """
    from evalsvc.engines.prepare import list_models, model_root

    table = Table(title=f"local models in {model_root(root)}")
    for col in ("source", "state", "size", "path", "about"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for m in list_models(root):
        size = f"{m.size_bytes / 1e6:.1f} MB" if m.size_bytes else "-"
        color = {"ready": "green", "outdated": "yellow"}.get(m.state, "red")
        table.add_row(m.source, f"[{color}]{m.state}[/{color}]", size, str(m.path), m.description)
    Console(highlight=False).print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
