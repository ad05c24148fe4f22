"""Guardrail arms: each generation becomes one record per arm (`none` = unguarded, or a guardrail), with its own key.

The unguarded arm keeps the generation's record key; a guarded arm's key hashes the generation key with the
guard's fingerprint, so changing the guard model, format, mode or refusal makes new records and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalsvc.errors import UserError
from evalsvc.plan.keys import cell_id, digest

if TYPE_CHECKING:
    from evalsvc.specs.guard_formats import GuardFormat
    from evalsvc.manifest.judging import Guardrail

NONE = "none"


@dataclass(frozen=True)
class Arm:
    """One guardrail arm as the pipeline sees it (picklable; `target` is set once the guard is deployed)."""

    name: str
    fingerprint: str | None = None  # None: the unguarded arm
    mode: str | None = None  # input | output | both
    refusal: str = ""
    on_error: str = "pass"
    guided: bool = True
    label: str = ""  # the guard's backend (source or URL + model name), as recorded
    format: GuardFormat | None = None
    target: object | None = None  # where the guard is reached (engines.chat.ChatTarget), set once it is deployed

    @property
    def guarded(self) -> bool:
        return self.fingerprint is not None

    @property
    def checks(self) -> tuple[str, ...]:
        return {"input": ("input",), "output": ("output",), "both": ("input", "output")}.get(self.mode or "", ())


def guard_fingerprint(g: Guardrail, fmt: GuardFormat) -> str:
    """What changes a guarded record: the guard's backend, its format (id, version, content), mode and policy."""
    return digest(
        {
            "backend": g.label,
            "format": [fmt.id, fmt.version, fmt.digest()],
            "mode": g.mode,
            "refusal": g.refusal,
            "on_error": g.on_error,
            "guided": g.guided,
        },
        24,
    )


def plan_arms(guardrails: list[Guardrail]) -> list[Arm]:
    """The arms of a manifest's guardrails, in manifest order; formats are loaded (and checked) here."""
    from evalsvc.specs.guard_formats import load_guard_format

    arms: list[Arm] = []
    problems: list[str] = []
    seen: dict[str, str] = {}  # fingerprint -> "index (name)"
    for i, g in enumerate(guardrails):
        if g.is_none:
            arms.append(Arm(NONE))
            continue
        try:
            fmt = load_guard_format(g.format)
        except UserError as e:
            problems.extend(f"guardrails.{i}.format: {line}" for line in e.lines())
            continue
        fp = guard_fingerprint(g, fmt)
        if fp in seen:  # same content = same record keys: the two arms would be one
            problems.append(f"guardrails.{i} ({g.name}) has the same model, format, mode, refusal and on_error as "
                            f"guardrails.{seen[fp]}: remove one of them")  # fmt: skip
            continue
        seen[fp] = f"{i} ({g.name})"
        arms.append(Arm(g.name, fp, g.mode, g.refusal, g.on_error, g.guided, g.label, fmt))
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"guardrails: {len(problems)} problems, one per line below", problems)
    return arms


def arm_key(generation_key: str, arm: Arm) -> str:
    return digest({"r": generation_key, "g": arm.fingerprint}) if arm.guarded else generation_key


def arm_cell(row: dict, arm_name: str) -> str:
    return cell_id(row["candidate"], row["benchmark"], row["strategy"], arm_name)


def arm_records(row: dict, arms: list[Arm]) -> list[tuple[Arm | None, str, str]]:
    """(arm, record key, cell id) of every record one generation row becomes; no arms = the row itself."""
    if not arms:
        return [(None, row["record_key"], row["cell_id"])]
    return [(a, arm_key(row["record_key"], a), arm_cell(row, a.name)) for a in arms]
