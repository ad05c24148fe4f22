"""The Jobs API client without a cluster: where the address and the token come from, and how Ray's failures
become one-line evalsvc errors (Ray's own exception types are raised into the translator, nothing is mocked)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from ray.exceptions import AuthenticationError

from evalsvc.errors import SystemError_, UserError
from evalsvc.jobs.client import JobNotFound, Token, api_errors, connect_jobs, find_token, resolve_address, server_error

URL = "http://127.0.0.1:8265"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token unless a test writes one
    return tmp_path


def test_address_from_option_env_and_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_address(None) is None
    assert resolve_address("head:8265") == "http://head:8265"
    assert resolve_address("https://head.example/") == "https://head.example"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # inside a cluster: the GCS, not the Jobs API
    assert resolve_address(None) is None
    monkeypatch.setenv("RAY_ADDRESS", "http://a:8265")
    assert resolve_address(None) == "http://a:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://b:8265")
    assert resolve_address(None) == "http://b:8265"
    assert resolve_address("http://c:8265") == "http://c:8265"  # the option wins over both


def test_ray_client_address_is_refused() -> None:
    with pytest.raises(UserError, match="ray:// and GCS addresses are not the Jobs API"):
        resolve_address("ray://head:10001")


def test_token_lookup_order_as_ray(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    assert find_token() is None
    (clean_env / ".ray").mkdir()
    (clean_env / ".ray" / "auth_token").write_text("from-home\n")
    assert find_token() == Token("from-home", "~/.ray/auth_token")
    path = clean_env / "tok"
    path.write_text("  from-path  \n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert find_token().value == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert find_token() == Token("from-env", "RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "  ")  # empty counts as unset, as in Ray
    assert find_token().value == "from-path"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert find_token() is None


def test_unreadable_token_path_names_the_variable(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(clean_env / "missing"))
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH=.*missing: the file cannot be read or is empty"):
        find_token()


def test_token_value_never_in_repr() -> None:
    assert "s3cr3t" not in repr(Token("s3cr3t", "RAY_AUTH_TOKEN"))


def test_missing_and_wrong_token_messages() -> None:
    with pytest.raises(UserError, match=f"the cluster at {URL} requires a token: set RAY_AUTH_TOKEN") as e:
        with api_errors(URL, None):
            raise AuthenticationError("Authentication required: Unauthorized")
    assert e.value.exit_code == 2
    with pytest.raises(UserError, match=r"rejected the token from RAY_AUTH_TOKEN_PATH \(/t\)") as e:
        with api_errors(URL, Token("bad", "RAY_AUTH_TOKEN_PATH (/t)")):
            raise AuthenticationError("Authentication failed: Forbidden")
    assert "bad" not in e.value.message


def test_http_failures_map_to_error_kinds() -> None:
    with pytest.raises(JobNotFound, match="run 'r1': the cluster at .* has no such job"):
        with api_errors(URL, None, "r1"):
            raise RuntimeError("Request failed with status code 404: Job r1 does not exist.")
    with pytest.raises(UserError, match="run id 'r1' was already submitted"):
        with api_errors(URL, None, "r1"):
            raise RuntimeError("Request failed with status code 400: Traceback ...\nValueError: Job with submission_id r1 already exists.")
    with pytest.raises(SystemError_, match="cannot reach the Ray Jobs API"):
        with api_errors(URL, None):
            raise requests.exceptions.ConnectionError("refused")
    with pytest.raises(SystemError_, match="Ray Jobs API at .*: Version check returned 404"):
        with api_errors(URL, None):
            raise RuntimeError("Version check returned 404. Please ensure the cluster is running Ray 1.9 or higher.")


def test_server_traceback_reduced_to_its_error_line() -> None:
    text = (
        "Request failed with status code 500: Traceback (most recent call last):\n"
        '  File "/x/job_head.py", line 419, in submit_job\n    resp = await f()\n           ^^^^^\n'
        "RuntimeError: Request failed with status code 400: Traceback (most recent call last):\n"
        '  File "/x/job_manager.py", line 553, in submit_job\n    raise ValueError(\n'
        "ValueError: runtime_env pip failed: no matching distribution\n.\n."
    )
    assert server_error(text) == "ValueError: runtime_env pip failed: no matching distribution"
    assert server_error("plain message\nmore") == "plain message"


def test_refused_connection_is_a_system_error() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SystemError_, match=f"cannot reach the Ray Jobs API at http://127.0.0.1:{port}") as e:
        connect_jobs(f"127.0.0.1:{port}")
    assert e.value.exit_code == 1


def test_no_address_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no cluster address: give the head's dashboard address"):
        connect_jobs(None)
