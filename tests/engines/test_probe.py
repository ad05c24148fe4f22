"""The URL pre-flight against a dead loopback port and a live tiny HTTP server (200, 401, 404, 501, 503)."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalsvc.engines.probe import check_answers
from evalsvc.errors import UserError


def dead_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    """A loopback HTTP server answering GET /v1/models with the status in `server.status`; records auth headers."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            code = httpd.status if self.path == "/v1/models" else 404
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.status, httpd.seen = 200, seen
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_dead_port_is_named_with_its_field_and_the_fix():
    url = f"http://127.0.0.1:{dead_port()}/v1"
    with pytest.raises(UserError) as e:
        check_answers(url, "judge.url", fix="wait until the judge is Ready")
    assert e.value.exit_code == 2
    assert e.value.message.startswith(f"judge.url: {url} does not answer (ConnectionRefusedError")
    assert "wait until the judge is Ready" in e.value.message


def test_a_live_server_passes_and_gets_the_key(server):
    url = f"http://127.0.0.1:{server.server_port}/v1/"
    assert check_answers(url, "judge.url", api_key="k-123") == 200
    assert server.seen == ["Bearer k-123"]


def test_an_auth_error_or_no_get_still_proves_a_server_but_a_gateway_503_does_not(server):
    url = f"http://127.0.0.1:{server.server_port}/v1"
    for status in (401, 404, 501):  # a wrong key, no /models route, no GET at all: a server is there
        server.status = status
        assert check_answers(url, "judge.url") == status
    server.status = 503
    with pytest.raises(UserError, match=r"judge.url: .* answers HTTP 503"):
        check_answers(url, "judge.url")
