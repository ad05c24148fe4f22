"""The Ray Jobs API as evalsvc uses it: find the cluster's token, and turn HTTP failures into one-line errors.

A missing or wrong token and an unknown run are the user's to fix (UserError); an unreachable head is not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsvc.errors import SystemError_, UserError

TOKEN_HELP = "set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH to a file holding it, or write it to ~/.ray/auth_token)"
ADDRESS_HELP = "give the head's dashboard address, like --address http://HEAD:8265 (or set RAY_API_SERVER_ADDRESS)"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobNotFound(UserError):
    """The cluster has no job with this submission id (never submitted there, or the cluster was replaced)."""

    def __init__(self, run_id: str, url: str):
        super().__init__(f"run {run_id!r}: the cluster at {url} has no such job; check the run id or --address")


@dataclass(frozen=True)
class Token:
    value: str
    source: str  # where it was found, for messages; never the value

    def __repr__(self) -> str:
        return f"Token(source={self.source!r}, value=<redacted>)"


def resolve_address(address: str | None) -> str | None:
    """The dashboard URL from --address, else RAY_API_SERVER_ADDRESS, else an http(s) RAY_ADDRESS; None if none."""
    env_ray = os.environ.get("RAY_ADDRESS", "")
    # Inside a cluster RAY_ADDRESS is the GCS (host:6379), not the Jobs API: only an http(s) one is a dashboard.
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or (env_ray if env_ray.startswith("http") else None)
    if not address:
        return None
    if "://" not in address:
        address = f"http://{address}"
    if address.split("://", 1)[0] not in ("http", "https"):
        raise UserError(f"--address {address!r}: {ADDRESS_HELP}; ray:// and GCS addresses are not the Jobs API")
    return address.rstrip("/")


def find_token() -> Token | None:
    """The cluster token, looked up where Ray 2.60 looks: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token.

    Ray's own client sends it only when RAY_AUTH_MODE=token is set on the client too (an unset mode means
    "disabled" there), so a laptop holding the right token still got 401s; evalsvc sends any token it finds,
    unless RAY_AUTH_MODE=disabled says not to.
    """
    if os.environ.get("RAY_AUTH_MODE", "").strip().lower() == "disabled":
        return None
    value = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if value:
        return Token(value, "RAY_AUTH_TOKEN")
    path_var = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path_var:
        value = _read_token(Path(path_var).expanduser())
        if not value:
            raise UserError(f"RAY_AUTH_TOKEN_PATH={path_var}: the file cannot be read or is empty; point it at the token file or unset it")
        return Token(value, f"RAY_AUTH_TOKEN_PATH ({path_var})")
    value = _read_token(Path.home() / ".ray" / "auth_token")
    return Token(value, "~/.ray/auth_token") if value else None


def _read_token(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


class Jobs:
    """The Jobs API of one Ray cluster; every call raises evalsvc errors only."""

    def __init__(self, address: str, client: Any, token: Token | None):
        self.address, self._client, self.token = address, client, token

    def submit(self, entrypoint: str, submission_id: str, runtime_env: dict, metadata: dict[str, str]) -> str:
        with self.errors(submission_id):
            return self._client.submit_job(
                entrypoint=entrypoint, submission_id=submission_id, runtime_env=runtime_env, metadata=metadata
            )

    def info(self, run_id: str) -> Any | None:
        """The job's JobDetails (status, message, times, metadata), None if the cluster has no such job."""
        try:
            with self.errors(run_id):
                return self._client.get_job_info(run_id)
        except JobNotFound:
            return None

    def logs(self, run_id: str) -> str:
        with self.errors(run_id):
            return self._client.get_job_logs(run_id)

    def follow(self, run_id: str, write: Callable[[str], None]) -> None:
        """Stream the job's logs to `write` until the job ends (the Jobs API's websocket tail)."""

        async def tail() -> None:
            async for chunk in self._client.tail_job_logs(run_id):
                write(chunk)

        if self.info(run_id) is None:  # the websocket would only say "closed": ask plainly first
            raise JobNotFound(run_id, self.address)
        with self.errors(run_id):
            asyncio.run(tail())

    def stop(self, run_id: str) -> bool:
        """Ask the job to stop (SIGTERM, then SIGKILL after a grace period); False if it had already ended."""
        with self.errors(run_id):
            return bool(self._client.stop_job(run_id))

    def wait_ended(self, run_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
        """Poll until the job is SUCCEEDED / FAILED / STOPPED or `timeout_s` passes; returns the last status."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.info(run_id)
            status = str(getattr(job, "status", "UNKNOWN"))
            if status in TERMINAL or job is None or time.monotonic() >= deadline:
                return status
            time.sleep(poll_s)

    def list(self) -> list[Any]:
        with self.errors():
            return list(self._client.list_jobs())

    @contextmanager
    def errors(self, run_id: str | None = None) -> Iterator[None]:
        with api_errors(self.address, self.token, run_id):
            yield


def connect_jobs(address: str | None) -> Jobs:
    """Open the Jobs API at `address` (or the env's); checks the connection and the token right away."""
    url = resolve_address(address)
    if url is None:
        raise UserError(f"no cluster address: {ADDRESS_HELP}")
    token = find_token()
    headers = {"Authorization": f"Bearer {token.value}"} if token else {}
    from ray.job_submission import JobSubmissionClient

    with api_errors(url, token), _env("RAY_API_SERVER_ADDRESS", url):
        # Ray lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the address argument: make ours the one it reads.
        client = JobSubmissionClient(url, headers=headers)
    return Jobs(url, client, token)


@contextmanager
def api_errors(url: str, token: Token | None, run_id: str | None = None) -> Iterator[None]:
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError:
        if token is None:
            raise UserError(f"the cluster at {url} requires a token: {TOKEN_HELP}") from None
        raise UserError(
            f"the cluster at {url} rejected the token from {token.source}: set RAY_AUTH_TOKEN to this cluster's "
            "token (KubeRay: the Secret evalsvc-ray-auth; VMs: `ray get-auth-token` on the head)"
        ) from None
    except (ConnectionError, requests.exceptions.RequestException) as e:
        raise SystemError_(
            f"cannot reach the Ray Jobs API at {url} ({type(e).__name__}): check --address and that the head's "
            "dashboard port is reachable from here (kubectl port-forward, ray dashboard, SSH tunnel)"
        ) from None
    except RuntimeError as e:
        text = str(e)
        if run_id is not None and "status code 404" in text:
            raise JobNotFound(run_id, url) from None
        if run_id is not None and "already exists" in text:
            raise UserError(f"run id {run_id!r} was already submitted to {url}: choose another --run-id") from None
        raise SystemError_(f"Ray Jobs API at {url}: {server_error(text)}") from None


def server_error(text: str) -> str:
    """The line that says what went wrong: Ray passes the server's (nested) traceback on as the error text."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "."]
    if not any("Traceback (most recent call last)" in ln for ln in lines):
        return (lines or ["(no message)"])[0][:500]
    errors = [ln for ln in lines if not ln.startswith(("File ", "^", "Traceback", "raise ", "During handling"))
              and ":" in ln and ln.split(":", 1)[0].replace(".", "").isidentifier()]
    return (errors or lines)[-1][:500]


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
