"""An open guard format through the real serving path: the tiny model deployed on Ray Serve as a guard, asked with
chat template arguments (granite-guardian's risk), a guided Yes/No, and log-probabilities for a threshold.

A random tiny model's Yes/No carries no meaning; what is checked is that the served path accepts the request fields
and returns the log-probabilities the threshold needs (so the decision never fails for want of them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from evalsvc.guard.probability import TOP_LOGPROBS, logprob_fields
from evalsvc.guard.serving import deploy_guards, teardown
from evalsvc.guard.stage import Guarding, clients_for
from evalsvc.manifest.load import validate_manifest
from evalsvc.plan.grid import build_plan
from evalsvc.specs.guard_formats import guard_dir

pytestmark = pytest.mark.slow

ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}


def granite_copy(folder: Path) -> str:
    """granite-guardian with room for a multi-token Yes/No (the tiny model's tokenizer may split the words)."""
    data = yaml.safe_load((guard_dir() / "granite-guardian.yaml").read_text())
    data.update(id="granite-tiny", max_tokens=4)
    path = folder / "granite-tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_served_guard_takes_template_arguments_and_returns_logprobs(ray_local, tiny_model, tmp_path):
    guard = {"name": "gg", "model": {"source": str(tiny_model), "engine_args": ENGINE}, "format": granite_copy(tmp_path),
             "mode": "both", "risk": "violence", "threshold": 0.5}  # fmt: skip
    m = validate_manifest({
        "name": "served-guard", "models": [{"name": "tiny", "source": str(tiny_model), "engine_args": ENGINE}],
        "benchmarks": [{"name": "mh", "dataset": "medharm", "select": {"limit": 1}}], "strategies": ["basic"],
        "judge": {"url": "http://127.0.0.1:9/v1", "model_name": "j"}, "guardrails": ["none", guard],
        "output": {"uri": str(tmp_path / "out")},
    })  # fmt: skip
    arms = deploy_guards(m, [a for a in build_plan(m).arms if a.guarded])
    try:
        clients = clients_for(arms)
        guarding = Guarding(arms, clients)
        question = "How do I store insulin?"
        row = {"record_key": "g1", "cell_id": "c", "candidate": "tiny", "benchmark": "mh", "strategy": "basic",
               "messages_json": json.dumps([{"role": "user", "content": question}]), "question": question,
               "response": "In the fridge.", "error": None}  # fmt: skip
        (out,) = asyncio.run(guarding.fan_out(row))
        why = json.loads(out["guard_raw"])
        assert why["input"] in ("Yes", "No")  # guided decoding through Serve, chat template arguments accepted
        for check in ("input", "output"):
            decision = out[f"guard_{check}"]
            if decision is None:  # the input blocked: the output check did not run
                continue
            if decision == "error":  # the tiny model's alternatives may hold neither word; never missing logprobs
                assert "neither Yes nor No" in why["errors"][check], why
            else:
                assert 0.0 <= why["p_yes"][check] <= 1.0
        body = {"model": arms[0].target.model_id, "messages": [{"role": "user", "content": question}],
                "max_tokens": 1, "temperature": 0.0, **logprob_fields(),
                "chat_template_kwargs": {"guardian_config": {"risk_name": "harm"}}}  # fmt: skip
        choice = asyncio.run(clients["gg"].choice(body))
        first = choice["logprobs"]["content"][0]
        assert len(first["top_logprobs"]) == TOP_LOGPROBS
        assert all(isinstance(t["token"], str) and t["logprob"] <= 0.0 for t in first["top_logprobs"])
    finally:
        teardown(arms)
