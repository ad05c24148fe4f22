"""Background start of Serve apps: the order of events, what callers see on the gate, failures and stops (no Ray:
a scripted ServeOps stands in for Serve and the gate actor)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from evalsvc.engines.serve_llm import AppDeployment
from evalsvc.engines.startup import AppGate, AppStartup, ServeOps, poll_ready
from evalsvc.errors import SystemError_


def cfg(model_id: str) -> dict:
    return {"model_loading_config": {"model_id": model_id, "model_source": "/m"}}


class LocalGate(AppGate):
    closed = False

    def close(self) -> None:
        self.closed = True


class ScriptedServe(ServeOps):
    """Apps become RUNNING when the test releases them; `fail` makes start or wait raise."""

    timeout_s = 30

    def __init__(self, running: tuple[str, ...] = (), fail_start: bool = False, fail_wait: str | None = None):
        self.running, self.fail_start, self.fail_wait = set(running), fail_start, fail_wait
        self.released: dict[str, threading.Event] = {}
        self.started: list[str] = []
        self.starts = 0
        self.local_gate = LocalGate()

    def release(self, app: str) -> None:
        self.released.setdefault(app, threading.Event()).set()

    def start(self, apps):
        if self.fail_start:
            raise SystemError_("judge: Ray Serve could not deploy 'judge-app': bad config")
        self.starts += 1
        deps = [AppDeployment(name, c["model_loading_config"]["model_id"]) for name, c in apps]
        self.started = [d.app_name for d in deps if d.app_name not in self.running]
        return deps, [d for d in deps if d.app_name not in self.running]

    def wait(self, dep, deadline, stop):
        if dep.app_name == self.fail_wait:
            raise SystemError_(f"judge: Serve application {dep.app_name!r} is DEPLOY_FAILED: no memory")
        ev = self.released.setdefault(dep.app_name, threading.Event())
        while not ev.wait(0.01):
            if stop():
                return False
        return True

    def gate(self, name):
        return self.local_gate


def startup_with(serve: ScriptedServe) -> tuple[AppStartup, list[str]]:
    events: list[str] = []
    s = AppStartup("evalsvc-apps-test", on_event=events.append, serve=serve)
    return s, events


def test_add_returns_deployments_before_anything_is_deployed():
    serve = ScriptedServe()
    s, events = startup_with(serve)
    deps = s.add("judge", [("judge-app", cfg("judge-abc"))])
    assert deps == [AppDeployment("judge-app", "judge-abc")]
    assert serve.started == [] and events == []  # nothing happens until launch


def test_apps_become_ready_on_the_gate_one_by_one_and_roles_report_when_all_are_up():
    serve = ScriptedServe()
    s, events = startup_with(serve)
    s.add("judge", [("judge-app-a", cfg("a")), ("judge-app-b", cfg("b"))])
    s.add("guard", [("guard-lg", cfg("g"))])
    s.launch()
    serve.release("judge-app-a")
    serve.release("judge-app-b")
    serve.release("guard-lg")
    s.wait()
    assert serve.starts == 1  # one start for every app of the run
    assert [serve.local_gate.get(n)[0] for n in ("judge-app-a", "judge-app-b", "guard-lg")] == ["ready"] * 3
    assert events == ["serve_start", "judge_ready", "guard_ready"]


def test_an_app_already_running_is_ready_at_once():
    serve = ScriptedServe(running=("judge-app",))
    s, events = startup_with(serve)
    s.add("judge", [("judge-app", cfg("j"))])
    s.launch()
    s.wait()
    assert serve.local_gate.get("judge-app") == ("ready", "")
    assert events == ["serve_start", "judge_ready"]


@pytest.mark.parametrize("how", ["start", "wait"])
def test_a_failed_deploy_fails_every_waiting_app_with_its_message_and_is_re_raised(how):
    serve = ScriptedServe(fail_start=how == "start", fail_wait="judge-app" if how == "wait" else None)
    s, _ = startup_with(serve)
    s.add("judge", [("judge-app", cfg("j"))])
    s.add("guard", [("guard-x", cfg("g"))])
    s.launch()
    with pytest.raises(SystemError_, match="judge"):
        s.wait()
    for app in ("judge-app", "guard-x"):
        state, message = serve.local_gate.get(app)
        assert state == "failed" and "SystemError_" in message and "judge" in message
    assert isinstance(s.error, SystemError_)


def test_stop_abandons_a_deploy_still_waiting_and_closes_the_gate():
    serve = ScriptedServe()
    s, events = startup_with(serve)
    s.add("judge", [("judge-app", cfg("j"))])
    s.launch()
    s.stop(timeout_s=10)
    assert serve.local_gate.closed
    assert serve.local_gate.get("judge-app") == ("pending", "")
    assert "judge_ready" not in events and s.error is None


def test_without_apps_launch_starts_nothing():
    serve = ScriptedServe()
    s, events = startup_with(serve)
    s.launch()
    s.wait()
    s.stop()
    assert events == [] and serve.starts == 0 and not serve.local_gate.closed


def _gate_reader(gate: AppGate):
    async def state_of(app: str):
        return gate.get(app)

    return state_of


def test_callers_wait_until_ready():
    gate = AppGate()

    async def main():
        waiter = asyncio.create_task(poll_ready(_gate_reader(gate), "judge-app", timeout_s=30, poll_s=0.01))
        await asyncio.sleep(0.05)
        assert not waiter.done()  # pending: the caller is still waiting
        gate.set("judge-app", "ready")
        await asyncio.wait_for(waiter, 5)

    asyncio.run(main())


def test_callers_see_the_failure_message():
    gate = AppGate()
    gate.set("judge-app", "failed", "SystemError_: judge: Serve application 'judge-app' is DEPLOY_FAILED")
    with pytest.raises(SystemError_, match="'judge-app' did not start: .*DEPLOY_FAILED"):
        asyncio.run(poll_ready(_gate_reader(gate), "judge-app", timeout_s=30, poll_s=0.01))


def test_callers_give_up_after_their_own_timeout():
    with pytest.raises(SystemError_, match="not ready after 0 s"):
        asyncio.run(poll_ready(_gate_reader(AppGate()), "judge-app", timeout_s=0.0, poll_s=0.01))


class FlakyServe:
    """Serve whose first `start` calls fail with a dead actor, as when the controller restarts under the call."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, []

    def start(self, **options):
        from ray.exceptions import RayActorError

        self.calls.append(options)
        if len(self.calls) <= self.failures:
            raise RayActorError()


def test_serve_start_connects_again_after_a_dead_actor_and_starts_no_http_proxy():
    from evalsvc.engines.serve_llm import start_serve

    serve = FlakyServe(failures=1)
    start_serve(serve)
    assert serve.calls == [{"proxy_location": "Disabled"}] * 2  # handles only: no proxy per node, no port


def test_serve_start_gives_up_after_its_attempts():
    from ray.exceptions import RayActorError

    from evalsvc.engines.serve_llm import start_serve

    serve = FlakyServe(failures=5)
    with pytest.raises(RayActorError):
        start_serve(serve, attempts=3)
    assert len(serve.calls) == 3
