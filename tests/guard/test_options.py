"""A guardrail's format options (controversial, threshold, policies, risk): validated at manifest load against the
format, defaults filled in, part of the arm's fingerprint only where the format reads them, and counted in the plan."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.arms import GuardOptions, arm_key, guard_fingerprint, plan_arms
from evalsvc.plan.grid import build_plan
from evalsvc.specs.guard_formats import load_guard_format
from tests.guard.conftest import guard_manifest, url_guard

SHIELD_POLICIES = ("dangerous_content", "harassment", "hate_speech", "sexually_explicit", "medical_harm")


def arms_of(*guardrails: dict):
    return plan_arms(validate_manifest(guard_manifest(list(guardrails))).guardrails)


def problems_of(*guardrails: dict) -> list[str]:
    with pytest.raises(UserError) as e:
        build_plan(validate_manifest(guard_manifest(["none", *guardrails])))
    assert e.value.exit_code == 2
    return e.value.lines()


def test_defaults_are_filled_in_per_format():
    qg, sg, gg, lg = arms_of(
        url_guard("qg", format="qwen3guard"),
        url_guard("sg", format="shieldgemma"),
        url_guard("gg", format="granite-guardian"),
        url_guard("lg", format="llama-guard-3"),
    )
    assert qg.options == GuardOptions(controversial="unsafe")
    assert sg.options == GuardOptions(policies=SHIELD_POLICIES) and sg.options.subjects() == SHIELD_POLICIES
    assert gg.options == GuardOptions(risk="harm") and gg.options.subjects() == ("harm",)
    assert lg.options == GuardOptions() and lg.options.subjects() == (None,)


def test_formats_without_options_keep_their_fingerprints():
    (lg,) = arms_of(url_guard("lg"))
    g = validate_manifest(guard_manifest([url_guard("lg")])).guardrails[0]
    assert lg.fingerprint == guard_fingerprint(g, load_guard_format("llama-guard"))  # no options entry at all


@pytest.mark.parametrize(
    ("fmt", "a", "b"),
    [
        ("qwen3guard", {}, {"controversial": "safe"}),
        ("shieldgemma", {}, {"policies": ["medical_harm"]}),
        ("shieldgemma", {}, {"threshold": 0.5}),
        ("shieldgemma", {"threshold": 0.5}, {"threshold": 0.3}),
        ("granite-guardian", {}, {"risk": "violence"}),
    ],
)
def test_an_option_changes_the_records(fmt, a, b):
    (x,) = arms_of(url_guard("g", format=fmt, **a))
    (y,) = arms_of(url_guard("g", format=fmt, **b))
    assert x.fingerprint != y.fingerprint and arm_key("k", x) != arm_key("k", y)


@pytest.mark.parametrize(
    ("fmt", "explicit"),
    [("qwen3guard", {"controversial": "unsafe"}), ("granite-guardian", {"risk": "harm"}),
     ("shieldgemma", {"policies": list(SHIELD_POLICIES)})],
)  # fmt: skip
def test_the_default_written_out_is_the_same_arm(fmt, explicit):
    (x,) = arms_of(url_guard("g", format=fmt))
    (y,) = arms_of(url_guard("g", format=fmt, **explicit))
    assert x.fingerprint == y.fingerprint


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        (url_guard("g", controversial="safe"), ("guardrails.1.controversial: guard format 'llama-guard' does not read "
         "it (only Qwen3Guard (parser qwen3guard) answers Controversial): remove controversial")),
        (url_guard("g", format="qwen3guard", threshold=0.5), ("guardrails.1.threshold: guard format 'qwen3guard' does "
         "not read it (only Yes/No guards (parser yes-no: shieldgemma, granite-guardian) have a P(Yes) to threshold)")),
        (url_guard("g", format="granite-guardian", policies=["harm"]), ("guardrails.1.policies: guard format "
         "'granite-guardian' does not read it")),
        (url_guard("g", format="shieldgemma", risk="harm"), ("guardrails.1.risk: guard format 'shieldgemma' does not "
         "read it (only formats that name a risk in the prompt ({risk}, e.g. granite-guardian) take a risk)")),
        (url_guard("g", format="shieldgemma", policies=["violence"]), ("guardrails.1.policies: ['violence'] are not "
         "policies of guard format 'shieldgemma': choose from dangerous_content, harassment")),
        (url_guard("g", format="granite-guardian", risk="medical"), ("guardrails.1.risk: 'medical' is not a risk of "
         "guard format 'granite-guardian': choose from harm, social_bias")),
    ],
)  # fmt: skip
def test_an_option_the_format_does_not_read_is_refused_with_the_fix(guard, expected):
    assert any(expected in line for line in problems_of(guard)), problems_of(guard)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"format": "qwen3guard", "controversial": "maybe"}, ("guardrails.1.controversial: controversial must be "
         "unsafe or safe, got 'maybe' (unsafe: a Controversial verdict blocks")),
        ({"format": "shieldgemma", "threshold": 1.0}, ("guardrails.1.threshold: threshold is a probability of Yes "
         "strictly between 0 and 1")),
        ({"format": "shieldgemma", "threshold": 0}, "strictly between 0 and 1 (e.g. 0.5), got 0"),
        ({"format": "shieldgemma", "policies": []}, "guardrails.1.policies: policies: list at least one policy"),
        ({"format": "shieldgemma", "policies": ["harassment", "harassment"]}, "['harassment'] listed twice"),
    ],
)  # fmt: skip
def test_bad_option_values_are_refused_at_load(fields, expected):
    lines = problems_of(url_guard("g", **fields))
    assert any(expected in line for line in lines), lines


def test_the_unguarded_arm_takes_no_options():
    with pytest.raises(UserError) as e:
        validate_manifest(guard_manifest([{"name": "none", "risk": "harm"}]))
    assert any("the guardrail named 'none' is the unguarded arm: remove risk" in line for line in e.value.lines())


def test_plan_counts_one_call_per_policy():
    p = build_plan(validate_manifest(guard_manifest([
        "none", url_guard("sg", format="shieldgemma", policies=["dangerous_content", "medical_harm"], mode="both"),
        url_guard("gg", format="granite-guardian", mode="input")])))  # fmt: skip
    by_arm = {c.guardrail: c for c in p.cells if c.benchmark == "mh" and c.model == "a" and c.strategy == "basic"}
    gens = by_arm["sg"].generations
    assert (by_arm["none"].guard_calls, by_arm["sg"].guard_calls, by_arm["gg"].guard_calls) == (0, gens * 2 * 2, gens)
    guards = {g["name"]: g for g in p.to_json()["guardrails"]}
    assert (
        guards["sg"]["options"] == {"policies": ["dangerous_content", "medical_harm"]}
        and "options" not in guards["none"]
    )
    assert guards["gg"]["options"] == {"risk": "harm"}
