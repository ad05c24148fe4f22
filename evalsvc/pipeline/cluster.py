"""Start or join Ray: a private local Ray by default, the cluster named by --address or RAY_ADDRESS otherwise.

A plain ray.init() could join a stranger's Ray on the same machine, so local runs say address="local".
"""

from __future__ import annotations

import os

LOCAL_MIN_CPUS = 16  # logical CPUs (scheduling slots): with fewer, the judge + engine stages starve the pipeline


def connect(address: str | None = None) -> bool:
    """Initialise Ray once; returns True when this process started a local Ray."""
    import ray

    if ray.is_initialized():
        return False
    from ray.data import DataContext

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level="WARNING", log_to_driver=_log_to_driver())
        local = False
    else:
        ray.init(
            address="local",
            num_cpus=max(LOCAL_MIN_CPUS, os.cpu_count() or 1),
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=_log_to_driver(),
        )
        local = True
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI shows per-cell progress itself
    ctx.print_on_execution_start = False
    return local


def cluster_view(fixed: bool = False):
    """The live nodes of the Ray cluster this process joined, the driver's IP, and what its autoscaler can add
    (`fixed`: nothing, as for the local Ray `connect` starts)."""
    import ray

    from evalsvc.pipeline.preflight import ClusterView, Node

    nodes = tuple(
        Node(n["NodeID"], n["NodeManagerAddress"], n.get("NodeManagerHostname", ""), dict(n.get("Resources") or {}))
        for n in ray.nodes()
        if n.get("Alive")
    )
    address = ray.get_runtime_context().gcs_address or ""
    return ClusterView(nodes, ray.util.get_node_ip_address(), () if fixed else _node_groups(nodes), address)


def _node_groups(nodes) -> tuple[dict, ...] | None:
    """Shapes the autoscaler can add: from the cluster config an autoscaler reports (Ray's v2 interface); None when
    an autoscaler runs whose node types are not reported (or no report yet); () for a fixed cluster (Ray's
    read-only monitor, which names one node type per live node)."""
    import json

    import ray._private.state
    from ray.experimental.internal_kv import _internal_kv_get

    config = ray._private.state.state.get_cluster_config()
    if config is not None and config.node_group_configs:
        return tuple(dict(g.resources) for g in config.node_group_configs if g.max_count != 0 and g.resources)
    status = _internal_kv_get(b"__autoscaling_status")  # written by the monitor every few seconds
    if not status:
        return None  # no report yet: nothing is known, so nothing is refused
    try:
        report = json.loads(status).get("autoscaler_report") or {}
    except ValueError:
        return None
    readonly = {f"node_{n.node_id}" for n in nodes}  # the read-only provider names each node type after the node
    types = set(report.get("active_nodes") or {}) | {p[1] for p in report.get("pending_nodes") or []}
    return None if types - readonly or report.get("pending_launches") else ()


def replica_nodes() -> list[dict]:
    """Where the run's model replicas are now: this job's vLLM engine actors and the Serve LLM replicas (judge,
    jurors, guards), each with its node, IP, state and restarts, from Ray's actor table."""
    import ray
    from ray._private import state  # the public state API needs the dashboard, which local runs leave off

    from evalsvc.engines.serve_llm import replica_app
    from evalsvc.pipeline.release import ENGINE_CLASS, LIVE_ACTOR

    job = ray.get_runtime_context().get_job_id()
    out = []
    for a in state.actors().values():
        name = a["ActorClassName"]
        if a["State"] not in LIVE_ACTOR:
            continue
        if ENGINE_CLASS in name and a["JobID"] == job:
            role, app = "engine", None
        elif (app := replica_app(name)) is not None:
            role = "serve"
        else:
            continue
        where = a.get("Address") or {}
        out.append({"role": role, "app": app, "node_id": where.get("NodeID") or "", "ip": where.get("IPAddress"),
                    "state": a["State"], "restarts": int(a.get("NumRestarts") or 0)})  # fmt: skip
    return sorted(out, key=lambda r: (r["role"], r["app"] or "", r["node_id"]))


def _log_to_driver() -> bool:
    return os.environ.get("EVALSVC_RAY_LOGS", "0") == "1"
