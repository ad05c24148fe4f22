"""Endpoint candidates without Ray: payloads, responses → records, cost, and the HTTP session (auth header,
retries, qps, concurrency, errors) against a small scripted OpenAI-style server on loopback.

The last tests drive ray.data.llm's own HttpRequestUDF (its code, no cluster) with evalsvc's session factory.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalsvc.engines.apps import free_port
from evalsvc.engines.http import FromResponse, Prices, ToPayload, endpoint_spec, processor_config
from evalsvc.engines.http_session import EndpointSessions, SecretValue, SessionPolicy
from evalsvc.errors import UserError
from evalsvc.manifest.models import Endpoint
from evalsvc.store.row import PLAN_COLUMNS

KEY = "sk-test-0123456789abcdef"


class Stub(ThreadingHTTPServer):
    """Answers chat completions by the requested model name: ok, flaky (429 twice), missing (404), broken
    (500, not JSON), slow (sleeps 2 s), garbled (200, not UTF-8), echo-key (401 echoing the Authorization header).
    Records every request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        srv: Stub = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append({"t": time.monotonic(), "auth": self.headers.get("Authorization"), "body": body})
            n_same = sum(r["body"] == body for r in srv.requests)
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        try:
            time.sleep(srv.delay + (2.0 if body["model"] == "slow" else 0.0))
        finally:
            # counted done before answering: the client may start its next request as soon as it has read this
            # answer, before this thread would get past the write
            with srv.lock:
                srv.in_flight -= 1
        self._answer(body, n_same)

    def _answer(self, body: dict, n_same: int) -> None:
        model = body["model"]
        if model == "flaky" and n_same <= 2:
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if model == "missing":
            return self._send(404, {"error": {"message": f"model {model} not found"}})
        if model == "broken":
            return self._send(500, "internal error", ctype="text/plain")
        if model == "garbled":
            return self._send(200, b"\xff\xfe{", ctype="application/json; charset=utf-8")
        if model == "echo-key":
            return self._send(401, {"error": {"message": f"bad key {self.headers.get('Authorization')}"}})
        text = "answer to " + body["messages"][-1]["content"]
        self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})

    def _send(self, status: int, payload, headers: dict | None = None, ctype: str = "application/json") -> None:
        if not isinstance(payload, bytes):
            payload = payload if isinstance(payload, str) else json.dumps(payload)
        data = payload if isinstance(payload, bytes) else payload.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def stub():
    srv = Stub()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _row(content: str = "q1", **sampling) -> dict:
    row = {k: None for k in PLAN_COLUMNS}
    params = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16, "seed": 4, **sampling}
    row.update(record_key="k-" + content, messages_json=json.dumps([{"role": "user", "content": content}]),
               sampling=json.dumps(params))  # fmt: skip
    return row


def _sessions(qps=None, concurrency=4, retries=2, timeout=10.0, key=KEY) -> EndpointSessions:
    return EndpointSessions(SessionPolicy(qps, concurrency, retries, timeout, retry_base_s=0.01), SecretValue(key))


def _post_all(factory: EndpointSessions, url: str, bodies: list[dict]) -> list[dict]:
    """What the stage does: start every request, then await them in order."""

    async def go():
        async with factory() as s:
            tasks = [s.post(url + "/chat/completions", headers={"Content-Type": "application/json"},
                            data=json.dumps(b)) for b in bodies]  # fmt: skip
            out = []
            for t in tasks:
                async with await t as resp:
                    assert resp.status == 200  # the stage must never see a status it would retry or fail on
                    out.append(await resp.json())
            return out

    return asyncio.run(go())


def _body(model: str, content: str = "q") -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 4}


# --- rows in and out -------------------------------------------------------------------------------------------


def test_payload_is_an_openai_chat_body_without_credentials():
    out = ToPayload("gpt-x")(_row("hello", temperature=0.3))
    assert out == {"payload": {"model": "gpt-x", "messages": [{"role": "user", "content": "hello"}],
                               "temperature": 0.3, "top_p": 1.0, "max_tokens": 16, "seed": 4}}  # fmt: skip


def _outcome(body: dict | str, status=200, error="", attempts=1) -> dict:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"status": status, "latency_s": 0.25, "error": error, "body": text, "attempts": attempts}


def test_answer_becomes_the_candidate_half_of_a_record_with_cost():
    body = {"choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}  # fmt: skip
    out = FromResponse(Prices(2.0, 8.0))({**_row(), "http_response": _outcome(body)})
    assert out["response"] == "hi" and out["error"] is None and out["finish_reason"] == "length"
    assert (out["prompt_tokens"], out["completion_tokens"], out["latency_s"]) == (1000, 500, 0.25)
    assert out["cost_usd"] == pytest.approx(1000 * 2.0 / 1e6 + 500 * 8.0 / 1e6)
    assert out["record_key"] == "k-q1" and set(PLAN_COLUMNS) <= set(out)


def test_cost_is_null_without_prices_and_a_missing_price_counts_zero():
    assert Prices().cost(10, 10) is None
    assert Prices(usd_per_1m_completion=1.0).cost(10**6, 2 * 10**6) == pytest.approx(2.0)


def test_failures_become_error_records_never_dropped():
    fr = FromResponse(Prices(1.0, 1.0))
    failed = fr({**_row(), "http_response": _outcome("", 503, "HTTP 503 Service Unavailable: busy", attempts=4)})
    assert failed["error"] == "generation: HTTP 503 Service Unavailable: busy (after 4 attempts)"
    assert failed["response"] is None and failed["finish_reason"] == "error" and failed["cost_usd"] == 0.0
    no_choices = fr({**_row(), "http_response": _outcome({"object": "error", "message": "bad"})})
    assert no_choices["error"].startswith("generation: the endpoint answered without choices")
    not_json = fr({**_row(), "http_response": _outcome("<html>")})
    assert not_json["error"] == "generation: the endpoint answered without a JSON object"


# --- the session: auth, retries, qps, concurrency ---------------------------------------------------------------


def test_authorization_header_carries_the_key_and_errors_never_echo_it(stub):
    out = _post_all(_sessions(), stub.url, [_body("ok"), _body("echo-key")])
    assert [r["auth"] for r in stub.requests] == [f"Bearer {KEY}"] * 2
    assert out[0]["status"] == 200 and out[0]["error"] == ""
    assert out[1]["status"] == 401 and "<redacted>" in out[1]["error"] and KEY not in json.dumps(out)


def test_no_key_sends_no_authorization_header(stub):
    _post_all(_sessions(key=None), stub.url, [_body("ok")])
    assert stub.requests[0]["auth"] is None


def test_429_is_retried_until_it_succeeds_and_404_is_final(stub):
    out = _post_all(_sessions(retries=3), stub.url, [_body("flaky"), _body("missing")])
    assert (out[0]["status"], out[0]["attempts"], out[0]["error"]) == (200, 3, "")
    assert out[1]["status"] == 404 and out[1]["attempts"] == 1 and "not found" in out[1]["error"]
    assert sum(r["body"]["model"] == "missing" for r in stub.requests) == 1


def test_5xx_timeouts_and_refused_connections_end_as_errors_after_the_retries(stub):
    out = _post_all(_sessions(retries=2, timeout=0.5), stub.url, [_body("broken"), _body("slow")])
    assert out[0]["error"] == "HTTP 500 Internal Server Error: internal error" and out[0]["attempts"] == 3
    assert out[1]["error"].startswith("timeout") and out[1]["attempts"] == 3
    garbled = _post_all(_sessions(retries=2), stub.url, [_body("garbled")])[0]
    assert garbled["error"].startswith("UnicodeDecodeError") and garbled["attempts"] == 1
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    refused = _post_all(_sessions(retries=1), dead, [_body("ok")])[0]
    assert refused["status"] == 0 and refused["attempts"] == 2 and "Connect" in refused["error"]


def test_qps_spaces_request_starts(stub):
    n, qps = 8, 20.0
    _post_all(_sessions(qps=qps, concurrency=8), stub.url, [_body("ok", str(i)) for i in range(n)])
    starts = sorted(r["t"] for r in stub.requests)
    # the limiter guarantees (n-1)/qps between the first and last start; 0.05 s slack for the server's clock
    assert starts[-1] - starts[0] >= (n - 1) / qps - 0.05


def test_concurrency_bounds_requests_in_flight(stub):
    stub.delay = 0.2
    _post_all(_sessions(concurrency=3), stub.url, [_body("ok", str(i)) for i in range(9)])
    assert len(stub.requests) == 9 and 2 <= stub.max_in_flight <= 3


# --- the key stays out of configs, reprs and rows ----------------------------------------------------------------


def test_key_is_resolved_from_env_and_hidden_in_every_repr(monkeypatch: pytest.MonkeyPatch):
    ep = Endpoint(url="http://127.0.0.1:9/v1/", model_name="m", api_key="${EVALSVC_TEST_EP_KEY}", qps=5)
    with pytest.raises(UserError, match=r"models.0.endpoint.api_key: environment variable EVALSVC_TEST_EP_KEY"):
        endpoint_spec(ep, "models.0.endpoint", 64)
    monkeypatch.setenv("EVALSVC_TEST_EP_KEY", KEY)
    spec = endpoint_spec(ep, "models.0.endpoint", 64)
    assert spec.url == "http://127.0.0.1:9/v1/chat/completions" and spec.batch_size == 16
    assert spec.sessions.headers() == {"Authorization": f"Bearer {KEY}"}
    config = processor_config(spec)  # (build_processor itself would start Ray for its telemetry actor)
    for text in (repr(spec), repr(config), config.model_dump_json(), repr(ep.model_dump())):
        assert KEY not in text
    clone = pickle.loads(pickle.dumps(spec.sessions))  # how it reaches the stage actor
    assert clone.headers() == spec.sessions.headers()


# --- ray.data.llm's own HTTP stage with evalsvc's sessions -------------------------------------------------------


def _stage_rows(url: str, models: list[str], concurrency: int = 4) -> list[dict]:
    from ray.llm._internal.batch.stages.http_request_stage import HttpRequestUDF

    udf = HttpRequestUDF(data_column="__data", expected_input_keys=["payload"], url=url + "/chat/completions",
                         max_retries=0, session_factory=_sessions(concurrency=concurrency))  # fmt: skip
    batch = {"__data": [{"payload": _body(m, f"q{i}"), "i": i} for i, m in enumerate(models)]}

    async def go():
        return [out async for out in udf(batch)]

    (out,) = asyncio.run(go())
    return out["__data"]


def test_the_stage_gets_one_answer_per_row_in_order_with_failures_as_errors(stub):
    rows = _stage_rows(stub.url, ["ok", "missing", "ok", "broken", "ok"])
    assert [r["i"] for r in rows] == [0, 1, 2, 3, 4]
    records = [FromResponse(Prices())({**_row(), **r}) for r in rows]
    assert [r["error"] is None for r in records] == [True, False, True, False, True]
    assert records[2]["response"] == "answer to q2" and records[2]["prompt_tokens"] == 11
    assert "HTTP 404" in records[1]["error"] and "HTTP 500" in records[3]["error"]


def test_the_stage_sends_a_batch_concurrently(stub):
    stub.delay = 0.2  # the stage itself awaits requests one by one; the session starts them all at once
    _stage_rows(stub.url, ["ok"] * 6, concurrency=3)
    assert stub.max_in_flight >= 2


def test_importing_the_endpoint_engine_loads_neither_vllm_nor_ray():
    import subprocess
    import sys

    code = "import sys, evalsvc.engines.http; print(sorted(m for m in ('vllm', 'torch', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
