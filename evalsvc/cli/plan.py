"""`evalsvc plan MANIFEST`: show the grid of cells, the engines (one load per checkpoint) and the totals.

`--json` prints the same machine-readable plan that `run` records in run.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def plan(
    manifest: Path = typer.Argument(..., help="Path to a manifest YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Expand MANIFEST into cells (model × [guardrail ×] benchmark × strategy) with item counts and totals.

    Examples: evalsvc plan manifests/quickstart.yaml ; evalsvc plan manifests/medsafety-sweep.yaml --json
    """
    from evalsvc.cli.validate import print_fit, probe_line
    from evalsvc.engines.fit import check_fit
    from evalsvc.judge.probes import probe_plan
    from evalsvc.manifest.load import load_manifest
    from evalsvc.plan.grid import build_plan, data_conn

    m = load_manifest(manifest)
    p = build_plan(m, data_conn(m))
    fit, probes = check_fit(p), probe_plan(p)
    if as_json:
        doc = {**p.to_json(), "probes": probes, "prompt_fit": fit.to_json(), "placement": placement(m)}
        typer.echo(json.dumps(doc, indent=2))
        return
    console = Console(highlight=False)
    console.print(_cells_table(p))
    for engine, served in p.engines().items():
        m = p.model(engine)
        if m.endpoint is not None:
            qps = f"qps {m.endpoint.qps:g}" if m.endpoint.qps else "no qps limit"
            console.print(f"endpoint [bold]{engine}[/bold] ({escape(m.source)}): endpoint (no load), {qps}, "
                          f"{m.endpoint.concurrency} in flight")  # fmt: skip
            continue
        adapters = [p.model(s) for s in served if p.model(s).adapter]
        names = ", ".join(f"{s} (LoRA)" if p.model(s).adapter else s for s in served)
        spread = ", spread over nodes" if m.replicas > 1 and int(m.engine_args.get("tensor_parallel_size") or 1) == 1 else ""
        console.print(f"engine [bold]{engine}[/bold] ({escape(m.source)}, {m.replicas} replica(s){spread}) serves: {names}")
        for a in adapters:  # adapters share their base's engine load: one load for all of them
            console.print(f"  LoRA {a.name}: {escape(a.adapter)}")
    for a in p.arms:
        what = (f"{a.mode} filter, format {a.format.label}, on_error {a.on_error}, model {a.label}" if a.guarded
                else "unguarded arm")  # fmt: skip
        if a.guarded and (opts := a.options.as_dict()):
            what += ", " + ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}" for k, v in opts.items())
        console.print(f"guardrail [bold]{a.name}[/bold]: {what}")
    for where, place in placement(p.manifest).items():
        console.print(f"placement of [bold]{where}[/bold]: " + escape(", ".join(f"{k} {v}" for k, v in place.items())))
    t = p.totals()
    if p.arms:
        console.print(f"guardrail axis: {len(p.arms)} arm(s) per generation → {t['records']} records, "
                      f"≤{t['guard_calls']} guard calls")  # fmt: skip
    if t["criteria"]:
        console.print(f"rubric benchmarks: {t['criteria']} criteria to grade (one grader call per generation × "
                      "criterion; counted in judge calls)")  # fmt: skip
    console.print(
        f"[bold]totals[/bold]: {t['cells']} cells, {t['generations']} generations, {t['judge_calls']} judge calls, "
        f"{t['mcq_parsed']} MCQ answers parsed without a judge, {t['engine_loads']} engine load(s), "
        f"{t['endpoint_requests']} endpoint request(s), "
        f"~{t['est_prompt_tokens']:,} prompt tokens, ≤{t['max_completion_tokens']:,} completion tokens"
    )
    line = probe_line(probes)
    if line:
        console.print(line)
    print_fit(console, fit)


def placement(manifest) -> dict[str, dict]:
    """Served model (judge, juror, guardrail) → where its replicas must run: custom resources, accelerator type."""
    served = []
    if manifest.judge is not None:
        served += [("judge", manifest.judge)] + [(f"judge.members.{i} ({b.name})", b)
                                                 for i, b in enumerate(manifest.judge.members)]  # fmt: skip
    served += [(f"guardrails.{i} ({g.name})", g) for i, g in enumerate(manifest.guardrails)]
    return {where: b.model.placement.model_dump(exclude_defaults=True) for where, b in served
            if b.model is not None and b.model.placement is not None}  # fmt: skip


def _cells_table(p) -> Table:
    guarded = bool(p.arms)
    # with arms, a cell's count is its records: the arms of one model × benchmark × strategy share generations
    rubric = any(c.kind == "rubric" for c in p.cells)
    cols = ["cell", "model", *(["guardrail"] if guarded else []), "benchmark", "kind", "strategy", "items",
            "records" if guarded else "generations", *(["guard calls"] if guarded else []),
            *(["criteria"] if rubric else []), "judge calls"]  # fmt: skip
    table = Table(title=f"plan: {p.manifest.name}")
    for col in cols:
        table.add_column(col, justify="left" if col in ("cell", "model", "guardrail", "benchmark", "kind", "strategy")
                         else "right")  # fmt: skip
    for c in p.cells:
        arm = [c.guardrail + (f" ({c.guard_mode})" if c.guard_mode else "")] if guarded else []
        calls = [str(c.guard_calls)] if guarded else []
        crit = [str(c.criteria) if c.kind == "rubric" else ""] if rubric else []
        table.add_row(c.cell_id, c.model, *arm, c.benchmark, c.kind, c.strategy, str(c.n_items), str(c.generations),
                      *calls, *crit, str(c.judge_calls))  # fmt: skip
    return table


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
