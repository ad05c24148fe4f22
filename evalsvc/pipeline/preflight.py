"""What cannot work on the Ray cluster a run joined, decided from its node list before any engine loads.

Pure functions over a `ClusterView` (nodes, the driver's IP, what an autoscaler can add); `check_cluster` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalsvc.errors import UserError
from evalsvc.manifest.schema import Manifest

# ray.data.llm and Ray Serve LLM add this much of `accelerator_type:<T>` to each bundle to pin the accelerator.
ACCELERATOR_SHARE = 0.001
SHARED_FS_FIX = "output.shared_filesystem: true if the folder is mounted at the same path on every node"


@dataclass(frozen=True)
class Node:
    """One live Ray node: where it is and what it has (Ray's total resources, not what is free now)."""

    node_id: str
    ip: str
    hostname: str = ""
    resources: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterView:
    nodes: tuple[Node, ...]
    driver_ip: str
    # Node shapes an autoscaler can add: () = a fixed cluster; None = an autoscaler whose shapes are unknown here.
    node_groups: tuple[dict[str, float], ...] | None = ()
    address: str = ""

    @property
    def one_host(self) -> bool:
        """Every node runs on the driver's host: a local folder is then the same folder everywhere."""
        return all(n.ip == self.driver_ip for n in self.nodes)


@dataclass(frozen=True)
class Demand:
    """`count` copies of one placement (engine replicas, Serve replicas) the plan asks Ray for."""

    field: str  # the manifest field to change, e.g. resources.gpus_per_replica
    unit: str  # what one copy is: "engine replica", "Serve replica"
    owner: str  # whose copies: "models.0 (tiny)", "judge"
    bundles: tuple[dict[str, float], ...]
    count: int = 1
    count_field: str = ""  # the field that sets `count`, e.g. models.0.replicas


def local_paths(manifest: Manifest, root: str, candidates: bool = True, judge: bool = True) -> list[tuple[str, str]]:
    """(field, path) of every local path that Ray workers, not only the driver, read or write.

    Benchmark files, calibration slices and guard formats are read by the driver and shipped, so they are not here.
    """
    out = [("output.uri" if root == manifest.output.uri else "--output", root)]
    if isinstance(manifest.output.cache, str):
        out.append(("output.cache", manifest.output.cache))  # earlier records are joined in Ray tasks
    if candidates:
        for i, m in enumerate(manifest.models):
            out += [(f"models.{i}.source", m.source), (f"models.{i}.adapter", m.adapter)]
    if judge and manifest.judge is not None:
        out += [(f"judge.rubrics.{k}", ref) for k, ref in manifest.judge.rubrics.items() if _is_file_ref(ref)]
        out.append(("judge.model.source", manifest.judge.model.source if manifest.judge.model else None))
        out += [(f"judge.members.{i}.model.source", b.model.source if b.model else None)
                for i, b in enumerate(manifest.judge.members)]  # fmt: skip
    out += [(f"guardrails.{i}.model.source", g.model.source if g.model else None)
            for i, g in enumerate(manifest.guardrails)]  # fmt: skip
    return [(f, p) for f, p in out if p and is_local(p)]


def is_local(ref: str) -> bool:
    """A folder or file on this machine (evalsvc:// models are built into a local cache), not s3:// or a hub id."""
    if ref.startswith("s3://"):
        return False
    if ref.startswith(("evalsvc://", "/", "~", ".")):
        return True
    return Path(ref).expanduser().exists()


def _is_file_ref(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml", ".txt"))


def path_problems(paths: list[tuple[str, str]], view: ClusterView, shared_fs: bool) -> list[str]:
    if shared_fs or view.one_host or not paths:
        return []
    hosts = sorted({n.ip for n in view.nodes} - {view.driver_ip})
    where = f"this cluster has nodes on {len(hosts)} other host(s) ({', '.join(hosts[:4])}) than the driver's ({view.driver_ip})"
    out = []
    for fld, path in paths:
        fix = "a built-in rubric id" if fld.startswith("judge.rubrics") else "an s3:// URI"
        if fld.endswith(".source"):
            fix = "a Hugging Face id or an s3:// prefix"
        out.append(f"{fld}: {path!r} is a local path, but {where}: Ray workers there would not see it; use {fix}, "
                   f"or set {SHARED_FS_FIX}")  # fmt: skip
    return out


def demands(manifest: Manifest, candidates: bool = True, judge: bool = True) -> list[Demand]:
    """The least each engine and served model needs per replica (more may be used; this is what must exist)."""
    res = manifest.resources
    out = []
    if candidates:
        for i, m in enumerate(manifest.models):
            if m.form != "checkpoint":
                continue  # adapters ride on their base's engine; endpoints need nothing from Ray
            tp = m.engine_args.tensor_parallel_size
            bundle = {"CPU": res.cpus_per_replica} if res.gpus_per_replica == 0 else \
                {"CPU": 1.0, "GPU": res.gpus_per_replica if tp == 1 else 1.0}  # fmt: skip
            if res.accelerator_type and res.gpus_per_replica > 0:
                bundle[f"accelerator_type:{res.accelerator_type}"] = ACCELERATOR_SHARE
            field_name = "resources.gpus_per_replica" if res.gpus_per_replica else "resources.cpus_per_replica"
            out.append(Demand(field_name, "engine replica", f"models.{i} ({m.name})", (bundle,) * tp, m.replicas,
                              f"models.{i}.replicas"))
    served = []
    if judge and manifest.judge is not None:
        served += [("judge", manifest.judge)] + [(f"judge.members.{i}", b) for i, b in enumerate(manifest.judge.members)]
    served += [(f"guardrails.{i}", g) for i, g in enumerate(manifest.guardrails)]
    for where, backend in served:
        if backend.model is not None:
            out.append(_served_demand(where, backend.model, res.gpus_per_replica == 0))
    return out


def _served_demand(where: str, model, cpu: bool) -> Demand:
    place = getattr(model, "placement", None)
    bundle: dict[str, float] = {"CPU": 1.0} if cpu else {"GPU": 1.0}
    if place is not None:
        bundle.update(place.resources)
        if place.accelerator_type and not cpu:
            bundle[f"accelerator_type:{place.accelerator_type}"] = ACCELERATOR_SHARE
    field_name = f"{where}.model.placement" if place is not None else f"{where}.model"
    tp = model.engine_args.tensor_parallel_size
    return Demand(field_name, "Serve replica", where, (bundle,) * (1 if cpu else tp), model.replicas,
                  f"{where}.model.replicas")


def resource_problems(wanted: list[Demand], view: ClusterView) -> list[str]:
    """Demands no node (live, or of a shape the autoscaler can add) can ever hold; a run would wait forever."""
    if view.node_groups is None:
        return []  # an autoscaler of unknown shapes may add what is missing
    shapes = [n.resources for n in view.nodes] + list(view.node_groups)
    out = []
    for d in wanted:
        missing = next((b for b in d.bundles if not any(fits(b, s) for s in shapes)), None)
        if missing is not None:
            out.append(f"{d.field}: one {d.unit} of {d.owner} needs {_fmt(missing)} on one node, but no node of the cluster"
                       f"{' at ' + view.address if view.address else ''} has that {_have(missing, shapes)}; "
                       f"{_fix(d.field, missing)}")  # fmt: skip
            continue
        got = d.count if view.node_groups else packed(d.bundles, d.count, [n.resources for n in view.nodes])
        if got < d.count:
            out.append(f"{d.count_field}: {d.count} {d.unit}s of {d.owner} need {d.count} × "
                       f"{_fmt(d.bundles[0])} at once, but this cluster (no autoscaler) holds {got}; lower it, "
                       "or add nodes")  # fmt: skip
    return out


def fits(bundle: dict[str, float], shape: dict[str, float]) -> bool:
    return all(shape.get(k, 0.0) + 1e-9 >= v for k, v in bundle.items() if v > 0)


def packed(bundles: tuple[dict[str, float], ...], count: int, nodes: list[dict[str, float]]) -> int:
    """How many of `count` copies of `bundles` fit onto the nodes' totals at once (first fit)."""
    free = [dict(n) for n in nodes]
    placed = 0
    for _ in range(count):
        taken = []
        for b in bundles:
            slot = next((f for f in free if fits(b, f)), None)
            if slot is None:
                for f, bb in taken:  # give back a half-placed copy
                    _add(f, bb, 1)
                return placed
            _add(slot, b, -1)
            taken.append((slot, b))
        placed += 1
    return placed


def _add(free: dict[str, float], bundle: dict[str, float], sign: int) -> None:
    for k, v in bundle.items():
        free[k] = free.get(k, 0.0) + sign * v


def _fmt(bundle: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in bundle.items()) + "}"


def _have(bundle: dict[str, float], shapes: list[dict[str, float]]) -> str:
    accel = sorted({k.split(":", 1)[1] for s in shapes for k in s if k.startswith("accelerator_type:")})
    if any(k.startswith("accelerator_type:") for k in bundle):
        return f"(accelerator types in the cluster: {', '.join(accel) or 'none'})"
    most = {k: max((s.get(k, 0.0) for s in shapes), default=0.0) for k in bundle}
    return f"(the most any node has: {_fmt(most)})"


def _fix(fld: str, bundle: dict[str, float]) -> str:
    if any(k.startswith("accelerator_type:") for k in bundle):
        return "choose an accelerator type the cluster has, remove it, or add such nodes"
    if fld.endswith("gpus_per_replica"):
        return "lower gpus_per_replica (0 = a CPU engine), or add GPU nodes"
    if fld.endswith("placement"):
        return "give some node these resources (`ray start --resources`), or change the placement"
    return f"lower {fld.rsplit('.', 1)[1]}, or add bigger nodes"


def cluster_problems(manifest: Manifest, root: str, view: ClusterView, candidates: bool = True,
                     judge: bool = True) -> list[str]:  # fmt: skip
    paths = local_paths(manifest, root, candidates, judge)
    return path_problems(paths, view, manifest.output.shared_filesystem) + \
        resource_problems(demands(manifest, candidates, judge), view)  # fmt: skip


def check_cluster(manifest: Manifest, root: str, started_local: bool = False, candidates: bool = True,
                  judge: bool = True) -> None:  # fmt: skip
    """Refuse (UserError) what cannot work on the cluster Ray is connected to; call after connecting.
    `started_local`: this process started the Ray it uses (one node, no autoscaler)."""
    from evalsvc.pipeline.cluster import cluster_view

    problems = cluster_problems(manifest, root, cluster_view(fixed=started_local), candidates, judge)
    if len(problems) == 1:
        raise UserError(problems[0])
    if problems:
        raise UserError(f"{len(problems)} things in the manifest cannot work on this Ray cluster", problems)
