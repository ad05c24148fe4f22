"""Serve applications for the models evalsvc calls over chat (judges, jurors, guards), and the targets that reach them.

One recipe for every role: a served model's fingerprint names its app's model id; an external URL needs no app.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from evalsvc.engines.chat import ChatTarget
from evalsvc.engines.startup import AppStartup
from evalsvc.envref import ENV_REF_RE
from evalsvc.manifest.base import Backend, ServedModel
from evalsvc.plan.keys import digest, model_fingerprint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_config(role: str, m: ServedModel, cpu: bool) -> dict:
    """The Ray Serve LLM config of a served model; its model id is `<role>-<fingerprint>`."""
    from evalsvc.engines.prepare import resolve_model_source
    from evalsvc.engines.serve_llm import llm_config

    engine_args = m.engine_args.model_dump(exclude_none=True)
    fp = model_fingerprint(m.source, m.revision, engine_args, None, None)
    place = m.placement.model_dump() if m.placement else None  # a new placement redeploys the app
    model_id = f"{role}-{digest([fp, m.replicas, m.max_replicas, cpu] + ([place] if place else []), 8)}"
    return llm_config(model_id, resolve_model_source(m.source), engine_args, m.replicas, m.max_replicas, cpu, place)


def url_target(b: Backend) -> ChatTarget:
    """An external OpenAI-compatible endpoint: the key travels as the name of its env var, never as its value."""
    key_env = b.api_key[2:-1] if b.api_key and ENV_REF_RE.match(b.api_key) else None
    return ChatTarget(model_id=b.model_name or "", url=b.url, api_key_env=key_env, label=b.label)


def deploy(backends: list[tuple[str, Backend]], role: str, cpu: bool, startup: AppStartup | None = None) -> dict[str, ChatTarget]:  # fmt: skip
    """App name → target for every backend. Served models are deployed together (their engines load side by side):
    here and now (if one fails, the others are removed before the error is raised), or, given a `startup`, in its
    background thread, with targets that wait for their app's gate before the first call."""
    served = [(app, app_config(role, b.model, cpu)) for app, b in backends if b.model is not None]
    deployed = {}
    if served and startup is not None:
        deployed = {d.app_name: d for d in startup.add(role, served)}
    elif served:
        from evalsvc.engines.serve_llm import deploy_apps

        try:
            deployed = {d.app_name: d for d in deploy_apps(served)}
        except BaseException:
            _delete_quietly([app for app, _ in served])
            raise
    gate = startup.gate if startup is not None else None
    out = {}
    for app, b in backends:
        dep = deployed.get(app)
        out[app] = url_target(b) if dep is None else ChatTarget(dep.model_id, app_name=dep.app_name, label=b.label,
                                                                gate=gate)  # fmt: skip
    return out


def launch(startup: AppStartup) -> None:
    """Start deploying, in the background, every app `deploy` handed to `startup`."""
    startup.launch()


def teardown(targets: Iterable[ChatTarget | None]) -> None:
    """Delete the Serve applications evalsvc deployed (external URLs are left alone)."""
    from evalsvc.engines.serve_llm import shutdown_app

    for t in targets:
        if t is not None and t.app_name:
            shutdown_app(t.app_name)


def _delete_quietly(names: list[str]) -> None:
    from evalsvc.engines.serve_llm import shutdown_app

    for name in names:
        try:
            shutdown_app(name)
        except Exception:  # noqa: BLE001 - best effort: the deploy error that got us here is the one to report
            pass
