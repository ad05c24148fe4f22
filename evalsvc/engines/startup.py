"""Serve apps started in the background: a driver thread deploys them while candidates generate, and a named gate
actor tells every caller when its app is RUNNING (or why it failed), so judging starts as soon as both exist.

Ray core only; the Serve calls themselves stay in engines.serve_llm.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable

from evalsvc.errors import SystemError_

log = logging.getLogger(__name__)
DEPLOY_TIMEOUT_S = 900  # the driver's bound on a deploy (every app RUNNING)
READY_TIMEOUT_S = 1200  # a caller's own bound; the driver's deploy deadline (DEPLOY_TIMEOUT_S) fires first
POLL_S = 0.5  # how often a deploy asks Serve, and a stage the gate, whether an app is up (late = idle engines)


class AppGate:
    """Ray actor body: app name → (state, message); state is pending, ready or failed."""

    def __init__(self):
        self.states: dict[str, tuple[str, str]] = {}

    def set(self, app: str, state: str, message: str = "") -> None:
        self.states[app] = (state, message)

    def get(self, app: str) -> tuple[str, str]:
        return self.states.get(app, ("pending", ""))


async def wait_ready(gate: str, app: str, timeout_s: float = READY_TIMEOUT_S, poll_s: float = POLL_S) -> None:
    """Wait (without blocking the caller's event loop) until the named gate actor says `app` is ready."""
    import ray

    try:
        handle = ray.get_actor(gate)
    except ValueError as e:
        raise SystemError_(f"Serve application {app!r}: the run's start-up gate {gate!r} is gone ({e})") from e

    async def state_of(name: str) -> tuple[str, str]:
        return await handle.get.remote(name)

    await poll_ready(state_of, app, timeout_s, poll_s)


async def poll_ready(state_of: Callable[[str], Awaitable[tuple[str, str]]], app: str, timeout_s: float,
                     poll_s: float = POLL_S) -> None:  # fmt: skip
    """Poll `state_of(app)` until it is ready; failed (with the gate's message) or the timeout raise."""
    deadline = time.monotonic() + timeout_s
    while True:
        state, message = await state_of(app)
        if state == "ready":
            return
        if state == "failed":
            raise SystemError_(f"Serve application {app!r} did not start: {message}")
        if time.monotonic() > deadline:
            raise SystemError_(f"Serve application {app!r} not ready after {timeout_s:.0f} s of waiting")
        await asyncio.sleep(poll_s)


def on_driver_node() -> dict:
    """Actor options that pin a run's bookkeeping actors (gate, progress) to the driver's node: the run ends with
    its driver anyway, and a worker node lost mid-run must not take them along."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)}


class _ActorGate:
    """The driver's side of the named gate actor (created before any caller can look it up)."""

    def __init__(self, name: str):
        import ray

        self.actor = ray.remote(num_cpus=0)(AppGate).options(name=name, **on_driver_node()).remote()
        ray.get(self.actor.get.remote(""))

    def set(self, app: str, state: str, message: str = "") -> None:
        self.actor.set.remote(app, state, message)

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


class ServeOps:
    """What the start-up thread does with Serve (engines.serve_llm) and where it publishes (the gate actor)."""

    timeout_s = DEPLOY_TIMEOUT_S

    def start(self, apps: list[tuple[str, dict]]):
        from evalsvc.engines.serve_llm import start_apps

        return start_apps(apps)

    def wait(self, dep, deadline: float, stop: Callable[[], bool]) -> bool:
        from evalsvc.engines.serve_llm import wait_running

        return wait_running(dep, deadline, stop)

    def gate(self, name: str):
        return _ActorGate(name)


class AppStartup:
    """Collects the run's Serve apps (judge, jurors, guards), then deploys them all in one background thread.

    `add` returns the deployments at once (their names and model ids do not depend on the deploy), `launch` starts
    the thread, `wait` joins it and raises its error, `stop` abandons it (the lifecycle then deletes the apps).
    """

    def __init__(self, gate: str, on_event: Callable[[str], None] = lambda _: None, serve: ServeOps | None = None):
        self.gate = gate
        self.on_event = on_event
        self.serve = serve or ServeOps()
        self.apps: list[tuple[str, str, dict]] = []  # (role, app name, LLMConfig dict)
        self.error: BaseException | None = None
        self._gate = None  # _ActorGate (or the ops' own) once launched
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, role: str, apps: list[tuple[str, dict]]) -> list:
        from evalsvc.engines.serve_llm import AppDeployment

        self.apps.extend((role, name, cfg) for name, cfg in apps)
        return [AppDeployment(name, cfg["model_loading_config"]["model_id"]) for name, cfg in apps]

    @property
    def names(self) -> list[str]:
        return [name for _, name, _ in self.apps]

    def launch(self) -> None:
        """Create the gate (before any caller can look for it) and start deploying; no-op without apps."""
        if not self.apps:
            return
        self._gate = self.serve.gate(self.gate)
        self._thread = threading.Thread(target=self._deploy, name="evalsvc-app-startup", daemon=True)
        self._thread.start()

    def _deploy(self) -> None:
        try:
            self.on_event("serve_start")
            deps, todo = self.serve.start([(name, cfg) for _, name, cfg in self.apps])
            starting = {d.app_name for d in todo}
            deadline = time.monotonic() + self.serve.timeout_s
            ready: set[str] = set()
            for (role, name, _), dep in zip(self.apps, deps):
                if name in starting and not self.serve.wait(dep, deadline, self._stop.is_set):
                    return  # stopped: the run ended without needing the app
                self._gate.set(name, "ready")
                ready.add(name)
                if all(n in ready for r, n, _ in self.apps if r == role):
                    self.on_event(f"{role}_ready")  # the last app of its role is up
        except BaseException as e:  # noqa: BLE001 - handed to every waiting caller and re-raised by wait()
            self.error = e
            message = f"{type(e).__name__}: {str(e)[:1500]}"
            for name in self.names:
                self._gate.set(name, "failed", message)

    def wait(self) -> None:
        """Join the deploy (every app RUNNING) and raise what failed it."""
        if self._thread is not None:
            self._thread.join()
        self.raise_error()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self, timeout_s: float = 120) -> None:
        """Abandon the deploy (the thread ends at its next status poll; a `run_many` in progress finishes first)
        and remove the gate, so a later run with the same id can make its own."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("Serve start-up thread still busy after %.0f s; tearing its apps down anyway", timeout_s)
        if self._gate is not None:
            self._gate.close()
            self._gate = None
