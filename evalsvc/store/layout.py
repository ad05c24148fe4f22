"""Where a run's objects live under an output root, and how a RUN argument (id or URI) resolves to them.

<root>/runs/<run_id>/{run.json, status.json, summary.json, summary.parquet, records/model=…/benchmark=…/strategy=…/*.parquet}
(guard-only runs: guard/guardrail=…/benchmark=…/*.parquet instead of records/)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from evalsvc.errors import UserError
from evalsvc.store.uri import join

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class RunLayout:
    root: str  # output root URI (s3://bucket/prefix or a local folder)
    run_id: str

    @property
    def uri(self) -> str:
        return join(self.root, "runs", self.run_id)

    @property
    def records(self) -> str:
        return join(self.uri, "records")

    @property
    def guard(self) -> str:
        """Guard-only mode's rows: guard/guardrail=…/benchmark=…/*.parquet."""
        return join(self.uri, "guard")

    @property
    def run_json(self) -> str:
        return join(self.uri, "run.json")

    @property
    def status_json(self) -> str:
        return join(self.uri, "status.json")

    @property
    def summary_json(self) -> str:
        return join(self.uri, "summary.json")

    @property
    def summary_parquet(self) -> str:
        return join(self.uri, "summary.parquet")


def resolve_run(run: str, root: str | None) -> RunLayout:
    """RUN is a run URI (…/runs/<id>) or a run id under `root` (the --output option or EVALSVC_OUTPUT)."""
    run = run.rstrip("/")
    if "/runs/" in run:
        base, _, run_id = run.rpartition("/runs/")
        return RunLayout(base, _checked(run_id))
    if "/" in run or run.startswith("s3:"):
        raise UserError(f"RUN {run!r}: give a run id or a run URI ending in /runs/<run_id>")
    if not root:
        raise UserError(f"RUN {run!r} is a run id: also pass --output ROOT (or set EVALSVC_OUTPUT) to say where runs are")
    return RunLayout(root, _checked(run))


def _checked(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise UserError(f"run id {run_id!r} is not valid: letters, digits, '_', '.', '-' only")
    return run_id
