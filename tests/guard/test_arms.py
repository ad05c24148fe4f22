"""Guardrail arms: record keys and cells of each arm, the plan's guardrail axis, and resume / cache sorting."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.reuse import plan_reuse
from evalsvc.plan.arms import NONE, arm_cell, arm_key, arm_records, plan_arms
from evalsvc.plan.grid import build_plan
from evalsvc.plan.keys import cell_id
from evalsvc.store.index import KeyIndex
from tests.guard.conftest import guard_manifest, url_guard

ITEMS_MH, ITEMS_MG, STRATEGIES, MODELS = 4, 2, 2, 2
GENS = MODELS * (ITEMS_MH + ITEMS_MG) * STRATEGIES  # 24 generations
SIG = {"high_risk": ("http://127.0.0.1:9/v1#judge", "high-risk-behaviour", "1.0.0")}


def plan_of(guardrails: list, **changes):
    return build_plan(validate_manifest(guard_manifest(guardrails, **changes)))


def arms_of(*guardrails: dict):
    return plan_arms(validate_manifest(guard_manifest(list(guardrails))).guardrails)


def test_none_keeps_the_generation_key_and_a_guard_derives_its_own():
    none, lg = arms_of("none", url_guard("lg"))
    assert none.name == NONE and not none.guarded and arm_key("k1", none) == "k1"
    assert lg.guarded and arm_key("k1", lg) not in ("k1", arm_key("k2", lg))
    assert arm_key("k1", lg) == arm_key("k1", arms_of(url_guard("lg"))[0])  # stable across plans


@pytest.mark.parametrize(
    "change",
    [{"mode": "input"}, {"refusal": "No."}, {"format": "guard-classifier"}, {"model_name": "other"},
     {"on_error": "block"}, {"guided": False}],
)  # fmt: skip
def test_guard_fingerprint_follows_what_changes_the_record(change):
    (base,) = arms_of(url_guard("lg"))
    (changed,) = arms_of({**url_guard("lg"), **change})
    assert base.fingerprint != changed.fingerprint and arm_key("k", base) != arm_key("k", changed)


def test_fingerprint_follows_the_format_file_content(tmp_path):
    import yaml

    from evalsvc.specs.guard_formats import guard_dir

    data = yaml.safe_load((guard_dir() / "llama-guard.yaml").read_text())
    same, bumped = tmp_path / "same.yaml", tmp_path / "bumped.yaml"
    same.write_text(yaml.safe_dump(data))
    bumped.write_text(yaml.safe_dump({**data, "version": "1.0.1"}))
    (a,) = arms_of(url_guard("lg"))
    (b,) = arms_of(url_guard("lg", format=str(same)))
    (c,) = arms_of(url_guard("lg", format=str(bumped)))
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_arm_records_and_cells():
    none, lg = arms_of("none", url_guard("lg"))
    row = {"record_key": "k", "cell_id": "c-gen", "candidate": "a", "benchmark": "mh", "strategy": "basic"}
    assert arm_records(row, []) == [(None, "k", "c-gen")]
    recs = arm_records(row, [none, lg])
    assert [(a.name, k) for a, k, _ in recs] == [("none", "k"), ("lg", arm_key("k", lg))]
    assert [c for *_, c in recs] == [cell_id("a", "mh", "basic", "none"), cell_id("a", "mh", "basic", "lg")]
    assert arm_cell(row, "none") != cell_id("a", "mh", "basic")


def test_plan_grid_is_models_x_guardrails_x_benchmarks_x_strategies():
    plain = plan_of([])
    p = plan_of(["none", url_guard("lg", mode="both"), url_guard("gc", format="guard-classifier", mode="output")])
    assert [a.name for a in p.arms] == ["none", "lg", "gc"] and plain.arms == []
    assert len(p.cells) == MODELS * 3 * 2 * STRATEGIES and len(plain.cells) == MODELS * 2 * STRATEGIES
    assert [(c.model, c.guardrail, c.benchmark) for c in p.cells[:5:2]] == [("a", "none", "mh"), ("a", "none", "mg"),
                                                                            ("a", "lg", "mh")]  # fmt: skip
    ids = [c.cell_id for c in p.cells]
    assert len(set(ids)) == len(ids) and not set(ids) & {c.cell_id for c in plain.cells}
    assert {c.guardrail: c.guard_calls // c.generations for c in p.cells} == {"none": 0, "lg": 2, "gc": 1}
    t, tp = p.totals(), plain.totals()
    assert t["generations"] == tp["generations"] == GENS  # the arms share their generations
    assert t["records"] == 3 * GENS and t["judge_calls"] == 3 * MODELS * ITEMS_MH * STRATEGIES
    assert t["guard_calls"] == 2 * GENS + GENS and tp["guard_calls"] == 0
    assert t["est_prompt_tokens"] == tp["est_prompt_tokens"]
    guards = p.to_json()["guardrails"]
    assert [(g["name"], g["mode"], g["format"]) for g in guards] == [
        ("none", None, None), ("lg", "both", "llama-guard@1.0.0"), ("gc", "output", "guard-classifier@1.0.0")]


def test_format_problems_name_the_field(tmp_path):
    with pytest.raises(UserError, match=r"^guardrails\.1\.format: guard format file 'guards/nope\.yaml' not found"):
        plan_of(["none", url_guard("lg", format="guards/nope.yaml")])
    (tmp_path / "bad.yaml").write_text("id: bad\n")
    with pytest.raises(UserError) as e:
        plan_of([url_guard("lg", format=str(tmp_path / "bad.yaml"))])
    assert e.value.lines()[1].startswith(f"guardrails.0.format: guard file {tmp_path / 'bad.yaml'} is invalid")


# --- resume and cache ------------------------------------------------------------------------------------------


def _keys(p, arm_name: str | None) -> list[str]:
    """Record keys of every generation of the plan for one arm (None: the generation keys)."""
    arm = next((a for a in p.arms if a.name == arm_name), None)
    return [arm_key(r["record_key"], arm) if arm else r["record_key"] for m in ("a", "b") for r in p.rows(m)]


@pytest.fixture(scope="module")
def guarded():
    return plan_of(["none", url_guard("lg")])


def test_fresh_run_generates_once_and_judges_every_arm(guarded):
    r = plan_reuse(guarded, KeyIndex(), KeyIndex(), SIG)
    assert sum(r.new_generations.values()) == GENS and r.guarded_rows == GENS
    assert r.judge_calls == 2 * MODELS * ITEMS_MH * STRATEGIES and r.report()["already_in_run"] == 0


def test_resume_with_every_arm_done_writes_nothing(guarded):
    done = KeyIndex(present=set(_keys(guarded, "none") + _keys(guarded, "lg")))
    r = plan_reuse(guarded, done, KeyIndex(), SIG)
    assert r.skip == set(_keys(guarded, None)) and sum(r.new_generations.values()) == 0
    assert r.judge_calls == 0 and r.guarded_rows == 0 and not r.cached and not r.arms_done
    assert r.report()["already_in_run"] == 2 * GENS
    assert set(r.skipped_by_cell) == {c.cell_id for c in guarded.cells}


def test_resume_with_only_the_unguarded_arm_re_reads_it_and_guards_it(guarded):
    none_keys = _keys(guarded, "none")
    done = KeyIndex(present=set(none_keys), generated=set(none_keys))
    r = plan_reuse(guarded, done, KeyIndex(), SIG)
    assert not r.skip and r.cached == set(none_keys) and r.from_this_run == GENS
    assert sum(r.new_generations.values()) == 0 and r.arms_done == set(none_keys)
    assert r.guarded_rows == GENS and r.judge_calls == MODELS * ITEMS_MH * STRATEGIES  # the guarded arm only
    assert r.report()["already_in_run"] == GENS


def test_resume_with_failed_unguarded_records_regenerates(guarded):
    none_keys = _keys(guarded, "none")
    r = plan_reuse(guarded, KeyIndex(present=set(none_keys)), KeyIndex(), SIG)  # present, but as errors
    assert sum(r.new_generations.values()) == GENS and not r.cached and r.arms_done == set(none_keys)


def test_cache_reuses_only_the_unguarded_generation_and_its_judgement(guarded):
    gen_keys = _keys(guarded, None)
    lg_keys = _keys(guarded, "lg")
    judged = {k: SIG["high_risk"] for k in gen_keys}
    cache = KeyIndex(present=set(gen_keys + lg_keys), generated=set(gen_keys + lg_keys), judged=judged)
    r = plan_reuse(guarded, KeyIndex(), cache, SIG)
    assert r.cached == set(gen_keys) and sum(r.new_generations.values()) == 0 and r.from_this_run == 0
    assert r.reused_judgements == MODELS * ITEMS_MH * STRATEGIES  # the none arm's, where the judge matches
    assert r.judge_calls == MODELS * ITEMS_MH * STRATEGIES  # the guarded arm is judged again
    assert r.guarded_rows == GENS and not r.skip


def test_without_guardrails_resume_is_unchanged():
    p = plan_of([])
    keys = _keys(p, None)
    r = plan_reuse(p, KeyIndex(present=set(keys[:5]), generated=set(keys[:5])), KeyIndex(), SIG)
    assert r.skip == set(keys[:5]) and sum(r.new_generations.values()) == GENS - 5
    assert r.report()["already_in_run"] == 5 and r.from_this_run == 0 and not r.arms_done
