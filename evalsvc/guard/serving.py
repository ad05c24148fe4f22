"""Reach the run's guard models: each served guardrail is a Serve app `guard-<name>`, a URL guard needs none.

Returns the arms with their targets set (picklable, sent to the guard-stage actors); `teardown` removes the apps.
"""

from __future__ import annotations

from dataclasses import replace

from evalsvc.engines import apps
from evalsvc.engines.startup import AppStartup
from evalsvc.manifest.schema import Manifest
from evalsvc.plan.arms import Arm


def app_name(guardrail: str) -> str:
    return f"guard-{guardrail}"


def deploy_guards(manifest: Manifest, arms: list[Arm] | tuple[Arm, ...],
                  startup: AppStartup | None = None) -> tuple[Arm, ...]:  # fmt: skip
    """Every guarded arm with its target: a Serve deployment (served model; in `startup`'s background thread when
    given one) or an external URL."""
    by_name = {g.name: g for g in manifest.guardrails}
    guarded = [(app_name(a.name), by_name[a.name]) for a in arms if a.guarded]
    cpu = manifest.resources.gpus_per_replica == 0
    targets = apps.deploy(guarded, role="guard", cpu=cpu, startup=startup)
    return tuple(replace(a, target=targets[app_name(a.name)]) if a.guarded else a for a in arms)


def teardown(arms: tuple[Arm, ...]) -> None:
    """Remove the Serve apps of the served guards (URL guards have nothing to remove)."""
    apps.teardown(a.target for a in arms)
