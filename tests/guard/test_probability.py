"""P(Yes) from OpenAI-format log-probabilities: both answer words, variants of them, one missing (bounded), none,
and the whole path through the HTTP client against a loopback server answering like vLLM's OpenAI server."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from evalsvc.engines.chat import HttpChat
from evalsvc.guard.probability import TOP_LOGPROBS, logprob_fields, yes_probability


def choice(*alternatives: tuple[str, float], chosen: tuple[str, float] | None = None) -> dict:
    top = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in alternatives]
    first = chosen or alternatives[0]
    content = [{"token": first[0], "logprob": math.log(first[1]), "top_logprobs": top}]
    return {"index": 0, "message": {"role": "assistant", "content": first[0]}, "logprobs": {"content": content}}


def test_both_words_renormalised_over_the_pair():
    p = yes_probability(choice(("Yes", 0.6), ("No", 0.2), ("The", 0.1)))
    assert p.value == pytest.approx(0.75) and not p.bounded and p.error is None


def test_spelling_variants_of_a_word_add_up():
    p = yes_probability(choice(("No", 0.5), (" yes", 0.2), ("Yes", 0.1), ("no", 0.1)))
    assert p.value == pytest.approx(0.3 / 0.9)


def test_a_word_missing_from_the_alternatives_is_bounded_by_the_least_listed():
    p = yes_probability(choice(("Yes", 0.9), ("Sure", 0.05), ("I", 0.01)))
    assert p.bounded and p.value == pytest.approx(0.9 / 0.91)


def test_the_chosen_token_counts_when_the_alternatives_leave_it_out():
    p = yes_probability(choice(("No", 0.3), chosen=("Yes", 0.6)))
    assert p.value == pytest.approx(2 / 3) and not p.bounded


@pytest.mark.parametrize(
    "bad", [{}, {"message": {"content": "Yes"}}, {"logprobs": None}, {"logprobs": {"content": []}}]
)
def test_no_log_probabilities_is_an_error(bad):
    p = yes_probability(bad)
    assert p.value is None and "returned no log-probabilities" in p.error


def test_neither_word_is_an_error_naming_what_was_there():
    p = yes_probability(choice(("Maybe", 0.5), ("Perhaps", 0.3)))
    assert p.value is None and "neither Yes nor No" in p.error and "'Maybe'" in p.error


class _OpenAIServer(BaseHTTPRequestHandler):
    """Answers /v1/chat/completions like an OpenAI-compatible server, with logprobs when the request asks."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        out = {"id": "c1", "object": "chat.completion", "model": body["model"],
               "choices": [choice(("No", 0.8), ("Yes", 0.15), ("\n", 0.01))]}  # fmt: skip
        if not body.get("logprobs"):
            out["choices"][0]["logprobs"] = None
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_http_client_returns_the_choice_with_its_logprobs():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAIServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = HttpChat(f"http://127.0.0.1:{server.server_port}/v1", api_key=None, timeout_s=10)
        body = {"model": "g", "messages": [{"role": "user", "content": "q"}], "max_tokens": 1, **logprob_fields()}
        got = asyncio.run(client.choice(body))
        text = asyncio.run(client.chat({k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}))
    finally:
        server.shutdown()
    assert got["message"]["content"] == "No" and text == "No"
    assert yes_probability(got).value == pytest.approx(0.15 / 0.95)
    first, second = _OpenAIServer.requests[-2:]
    assert first["path"] == "/v1/chat/completions" and (first["logprobs"], first["top_logprobs"]) == (
        True,
        TOP_LOGPROBS,
    )
    assert "logprobs" not in second
