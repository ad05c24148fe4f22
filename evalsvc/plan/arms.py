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
    from evalsvc.manifest.judging import Guardrail
    from evalsvc.specs.guard_formats import GuardFormat

NONE = "none"


@dataclass(frozen=True)
class GuardOptions:
    """A guardrail's format options, resolved against its format (defaults filled in; None where it reads none)."""

    controversial: str | None = None  # qwen3guard: unsafe | safe
    threshold: float | None = None  # yes-no formats: decide by P(Yes) >= threshold (needs log-probabilities)
    policies: tuple[str, ...] = ()  # per-category formats: the categories asked about, one call each
    risk: str | None = None  # formats with a {risk}: the risk asked about

    def subjects(self) -> tuple[str | None, ...]:
        """What each call of one check asks about: every policy, or the one risk (None: nothing in particular)."""
        return self.policies or (self.risk,)

    def as_dict(self) -> dict:
        return {k: v for k, v in {"controversial": self.controversial, "threshold": self.threshold,
                                  "policies": list(self.policies), "risk": self.risk}.items() if v}  # fmt: skip


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
    options: GuardOptions = GuardOptions()

    @property
    def guarded(self) -> bool:
        return self.fingerprint is not None

    @property
    def checks(self) -> tuple[str, ...]:
        return {"input": ("input",), "output": ("output",), "both": ("input", "output")}.get(self.mode or "", ())


def guard_fingerprint(g: Guardrail, fmt: GuardFormat, options: GuardOptions = GuardOptions()) -> str:
    """What changes a guarded record: the guard's backend, its format (id, version, content), mode, policy and the
    format's options (only where the format reads some, so other guards keep their keys)."""
    content = {
        "backend": g.label,
        "format": [fmt.id, fmt.version, fmt.digest()],
        "mode": g.mode,
        "refusal": g.refusal,
        "on_error": g.on_error,
        "guided": g.guided,
    }
    if opts := options.as_dict():
        content["options"] = opts
    return digest(content, 24)


OPTION_HELP = {
    "controversial": "only Qwen3Guard (parser qwen3guard) answers Controversial",
    "threshold": "only Yes/No guards (parser yes-no: shieldgemma, granite-guardian) have a P(Yes) to threshold",
    "policies": "only formats that ask one policy per call (per_category: true, e.g. shieldgemma) take policies",
    "risk": "only formats that name a risk in the prompt ({risk}, e.g. granite-guardian) take a risk",
}


def resolve_options(g: Guardrail, fmt: GuardFormat) -> tuple[GuardOptions, list[str]]:
    """The guardrail's options checked against its format, with defaults; (options, problems 'field: why, fix')."""
    problems = []
    takes = fmt.option_names()
    for name, why in OPTION_HELP.items():
        if getattr(g, name) is not None and name not in takes:
            problems.append(f"{name}: guard format '{fmt.id}' does not read it ({why}): remove {name}")
    policies = tuple(g.policies or (list(fmt.categories) if fmt.per_category else []))
    if unknown := [p for p in policies if p not in fmt.categories]:
        problems.append(f"policies: {unknown} are not policies of guard format '{fmt.id}': choose from "
                        f"{', '.join(fmt.categories)}")  # fmt: skip
    risk = (g.risk or "harm") if "risk" in takes else None
    if risk is not None and risk not in fmt.categories:
        problems.append(f"risk: '{risk}' is not a risk of guard format '{fmt.id}': choose from "
                        f"{', '.join(fmt.categories)}")  # fmt: skip
    controversial = (g.controversial or "unsafe") if "controversial" in takes else None
    return GuardOptions(controversial, g.threshold, policies if fmt.per_category else (), risk), problems


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
        options, wrong = resolve_options(g, fmt)
        if wrong:
            problems.extend(f"guardrails.{i}.{line}" for line in wrong)
            continue
        fp = guard_fingerprint(g, fmt, options)
        if fp in seen:  # same content = same record keys: the two arms would be one
            problems.append(f"guardrails.{i} ({g.name}) has the same model, format, options, mode, refusal and "
                            f"on_error as guardrails.{seen[fp]}: remove one of them")  # fmt: skip
            continue
        seen[fp] = f"{i} ({g.name})"
        arms.append(Arm(g.name, fp, g.mode, g.refusal, g.on_error, g.guided, g.label, fmt, options=options))
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
