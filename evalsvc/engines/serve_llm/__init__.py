"""Where evalsvc drives Ray Serve LLM: deploy the judge app and call it through a deployment handle.

The judge is a separate Serve application of one deployment (`LLMConfig` + `build_llm_deployment`, with the replica
class of serve_llm/replica.py), reused when already running. No OpenAI ingress: evalsvc reaches its apps through
deployment handles only, so an ingress would be one more process importing vLLM and torch per app.
Callers send plain dicts; nothing here imports vLLM's request or response classes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalsvc.engines.chat import through_outages
from evalsvc.engines.startup import DEPLOY_TIMEOUT_S, POLL_S
from evalsvc.engines.vllm import CPU_ENGINE_DEFAULTS, CPU_ENV, IMPORT_LOCK
from evalsvc.errors import MissingExtra, SystemError_

REPLICA_CLS = "evalsvc.engines.serve_llm.replica:DictChatServer"
SOURCE_ON_NODE = "evalsvc.engines.serve_llm.replica:SourceOnNode"  # callback for sources not in cloud storage
REPLICA_NAME = REPLICA_CLS.rsplit(":", 1)[1]  # each deployment's name starts with it (and its replica actors')
REPLICA_WAIT_S = 900.0  # how long a call waits for a lost replica to be replaced (a node replaced, the model reloading)


@dataclass(frozen=True)
class AppDeployment:
    app_name: str
    model_id: str  # what requests name as `model`; carries the config fingerprint so a changed judge redeploys

    @property
    def deployment(self) -> str:
        return f"{REPLICA_NAME}:{self.model_id}"  # build_llm_deployment's name: the replica class, then the model id


def replica_app(actor_class: str) -> str | None:
    """The app an evalsvc replica actor serves, from its class name (Serve names them
    ServeReplica:<app>:<deployment>, and evalsvc's deployments start with REPLICA_NAME); None for any other actor."""
    parts = actor_class.split(":")
    return parts[1] if len(parts) > 3 and parts[0] == "ServeReplica" and parts[2] == REPLICA_NAME else None


def _serve():
    try:
        with IMPORT_LOCK:  # the run's main thread may be importing vLLM's stack meanwhile
            from ray import serve
            from ray.serve.llm import LLMConfig, build_llm_deployment
    except ImportError as e:  # pragma: no cover - depends on the install
        raise MissingExtra("Ray Serve LLM (ray[serve])", "cpu") from e
    return serve, LLMConfig, build_llm_deployment


def llm_config(
    model_id: str, source: str, engine_args: dict, replicas: int, max_replicas: int | None, cpu: bool,
    placement: dict | None = None,
) -> dict:
    """The LLMConfig (as a dict) of the judge; the same dict goes into k8s RayService configs.

    `placement` ({resources, accelerator_type}, a manifest Placement): the replica actor's custom resources, which
    Ray Serve LLM merges into the first bundle of the replica's placement group, so the replica lands on such a node.
    """
    kwargs = dict(CPU_ENGINE_DEFAULTS) if cpu else {}
    kwargs.update({k: v for k, v in engine_args.items() if v is not None})
    cfg: dict[str, Any] = {
        "model_loading_config": {"model_id": model_id, "model_source": source},
        "engine_kwargs": kwargs,
        "deployment_config": {
            "autoscaling_config": {
                "min_replicas": replicas,
                "max_replicas": max(replicas, max_replicas or replicas),
                "target_ongoing_requests": 16,
            },
            "max_ongoing_requests": 64,
        },
    }
    if "://" not in source:  # a folder or a hub id: no node initialisation task (see SOURCE_ON_NODE's class)
        cfg["callback_config"] = {"callback_class": SOURCE_ON_NODE}
    if cpu:
        cfg["accelerator_config"] = {"kind": "cpu"}
        cfg["runtime_env"] = {"env_vars": dict(CPU_ENV)}
    if placement and placement.get("resources"):
        cfg["deployment_config"]["ray_actor_options"] = {"resources": dict(placement["resources"])}
    if placement and placement.get("accelerator_type") and not cpu:
        cfg["accelerator_type"] = placement["accelerator_type"]
    return cfg


def deploy_app(app_name: str, cfg: dict) -> AppDeployment:
    """Deploy (or reuse) the judge application and wait until it is RUNNING."""
    return deploy_apps([(app_name, cfg)])[0]


def deploy_apps(apps: list[tuple[str, dict]]) -> list[AppDeployment]:
    """Deploy (or reuse) several judge applications (a jury) at once and wait until all are RUNNING.

    One `run_many` call starts every app, so their engines load side by side instead of one after another.
    """
    deps, todo = start_apps(apps)
    deadline = time.monotonic() + DEPLOY_TIMEOUT_S
    for dep in todo:
        wait_running(dep, deadline)
    return deps


def start_apps(apps: list[tuple[str, dict]]) -> tuple[list[AppDeployment], list[AppDeployment]]:
    """Start every app that is not RUNNING yet without waiting for it: (all deployments, those still starting)."""
    serve, LLMConfig, build_llm_deployment = _serve()
    deps = [AppDeployment(name, cfg["model_loading_config"]["model_id"]) for name, cfg in apps]
    todo = [(dep, cfg) for dep, (_, cfg) in zip(deps, apps) if not _running(serve, dep)]
    if not todo:
        return deps, []
    start_serve(serve)
    with IMPORT_LOCK:  # LLMConfig imports the replica class, and vLLM with it
        targets = [
            serve.RunTarget(build_llm_deployment(LLMConfig(**cfg, server_cls=REPLICA_CLS)), name=dep.app_name,
                            route_prefix=None)
            for dep, cfg in todo
        ]  # fmt: skip
    names = ", ".join(repr(dep.app_name) for dep, _ in todo)
    try:
        serve.run_many(targets, wait_for_ingress_deployment_creation=False, wait_for_applications_running=False)
    except Exception as e:
        raise SystemError_(f"judge: Ray Serve could not deploy {names}: {e}") from e
    return deps, [dep for dep, _ in todo]


def start_serve(serve, attempts: int = 3) -> None:
    """Start Serve without HTTP proxies (a Serve already running is joined as it is). evalsvc reaches its apps through
    deployment handles only, so a proxy per node would cost a process on every node, bind one port per host (several
    raylets on one host collide on it) and, on a loaded machine, fail health checks that kill it while a deploy waits
    on it. A controller restarted under the call makes it fail with a dead actor although Serve is up: start again."""
    from ray.exceptions import RayActorError

    for attempt in range(attempts):
        try:
            serve.start(proxy_location="Disabled")
            return
        except RayActorError:
            if attempt == attempts - 1:
                raise


def wait_running(dep: AppDeployment, deadline: float, stop: Callable[[], bool] = lambda: False) -> bool:
    """Wait until `dep` is RUNNING (True), or `stop()` says to give up (False); a failed app or the deadline raise."""
    serve, _, _ = _serve()
    while time.monotonic() < deadline:
        if stop():
            return False
        status = serve.status().applications.get(dep.app_name)
        state = str(getattr(status, "status", ""))
        if state.endswith("RUNNING") and _running(serve, dep):
            return True
        if state.endswith("DEPLOY_FAILED") or state.endswith("UNHEALTHY"):
            raise SystemError_(f"judge: Serve application {dep.app_name!r} is {state}: {getattr(status, 'message', '')}")
        time.sleep(POLL_S)
    raise SystemError_(f"judge: Serve application {dep.app_name!r} not RUNNING after {DEPLOY_TIMEOUT_S}s")


def _running(serve, dep: AppDeployment) -> bool:
    status = serve.status().applications.get(dep.app_name)
    if status is None or not str(status.status).endswith("RUNNING"):
        return False
    return dep.deployment in status.deployments


def shutdown_app(app_name: str) -> None:
    serve, _, _ = _serve()
    serve.delete(app_name, _blocking=True)


class ServeHandleChat:
    """Chat completions through the judge's deployment handle (inside the cluster, no HTTP hop).

    With a `gate` (an app still starting in the background) the handle is made once the gate says RUNNING.

    A call whose replica is lost (its node gone, the actor dead) waits until Serve has replaced it, for up to
    `replica_wait_s`, and is sent again: judging resumes where it stopped instead of writing one error per record.
    `replica_losses` counts the calls that had to wait."""

    def __init__(self, dep: AppDeployment, gate: str | None = None, replica_wait_s: float = REPLICA_WAIT_S,
                 poll_s: float = 2.0):  # fmt: skip
        self._dep, self._gate = dep, gate
        self._handle = None
        self._wait_s, self._poll_s = replica_wait_s, poll_s
        self.replica_losses = 0

    async def ready(self) -> None:
        """Wait until the app is RUNNING (a failed start raises), then make the handle."""
        if self._handle is not None:
            return
        if self._gate:
            from evalsvc.engines.startup import wait_ready

            await wait_ready(self._gate, self._dep.app_name)
        from ray import serve

        self._handle = serve.get_deployment_handle(self._dep.deployment, self._dep.app_name)

    async def chat(self, body: dict) -> str:
        return (await self.choice(body))["message"]["content"] or ""

    async def choice(self, body: dict) -> dict:
        """The first choice of the response: its message and, when the body asks for them, its logprobs."""
        await self.ready()
        return await through_outages(lambda: self._handle.choice.remote(body), replica_lost_errors(), self._wait_s,
                                     self._poll_s, on_wait=self._lost)  # fmt: skip

    def _lost(self) -> None:
        self.replica_losses += 1


def replica_lost_errors() -> tuple[type[BaseException], ...]:
    """What a handle call raises when its replica went away (Serve starts a new one): worth waiting for."""
    from ray.exceptions import RayActorError
    from ray.serve.exceptions import DeploymentUnavailableError, ReplicaUnavailableError

    return (RayActorError, DeploymentUnavailableError, ReplicaUnavailableError)
