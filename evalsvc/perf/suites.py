"""The suite registry and dispatcher: suite name → module, options checked against what that suite's `run` takes.

Suites import Ray and vLLM lazily, so listing or validating them stays cheap.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from pathlib import Path
from typing import Any

from evalsvc.errors import UserError
from evalsvc.perf.report import BenchResult, finish

SUITES = {
    "efficiency": "evalsvc.perf.efficiency",
    "loads": "evalsvc.perf.loads",
    "overhead": "evalsvc.perf.overhead",
    "memory": "evalsvc.perf.memory",
    "peers": "evalsvc.perf.peers",
    "e2e": "evalsvc.perf.e2e",
}


def suite_module(name: str):
    if name not in SUITES:
        close = difflib.get_close_matches(name, SUITES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"unknown bench suite {name!r}: {hint}available: {', '.join(SUITES)}")
    return importlib.import_module(SUITES[name])


def suite_options(name: str) -> list[str]:
    """The options a suite accepts (the parameters of its `run`, `out` aside)."""
    params = inspect.signature(suite_module(name).run).parameters
    return [p for p in params if p != "out"]


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Keep the options the user set; one that this suite does not take is a user error naming the flag."""
    given = {k: v for k, v in options.items() if v is not None}
    accepted = set(suite_options(name))
    wrong = sorted(k for k in given if k not in accepted)
    if wrong:
        flags = ", ".join("--" + k.replace("_", "-") for k in wrong)
        takes = ", ".join("--" + k.replace("_", "-") for k in sorted(accepted)) or "no options"
        raise UserError(f"{flags}: not an option of suite {name!r} (it takes {takes})")
    return given


def run_suite(name: str, out: Path, options: dict[str, Any]) -> BenchResult:
    kwargs = check_options(name, options)
    return finish(suite_module(name).run(out=out, **kwargs))
