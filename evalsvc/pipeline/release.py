"""Give the cluster back after an engine: its vLLM actors dead and its placement groups removed, before the next loads.

Ray Data drops its actor handles when a pipeline ends (the actors die later, when Ray collects them), and ray.data.llm
never removes the placement groups it creates for tensor-parallel engines: they hold their GPUs until the driver ends.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ENGINE_CLASS = "vLLMEngineStageUDF"  # in the class name of ray.data.llm's engine actors (MapWorker(...))
LIVE_ACTOR = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING")
DEATH_WAIT_S = 60.0  # how long a released engine actor may take to die before it is killed


@dataclass(frozen=True)
class Footprint:
    """This job's live engine actors and the placement groups it created itself (unnamed, not removed)."""

    actors: frozenset[str]
    groups: frozenset[str]


@dataclass(frozen=True)
class Released:
    actors: int  # engine actors of the scope that were still alive when it ended
    killed: int  # of those, killed after DEATH_WAIT_S
    groups: int  # placement groups removed


def footprint() -> Footprint:
    import ray
    from ray._private import state

    job = ray.get_runtime_context().get_job_id()
    actors = {aid for aid, a in state.actors().items()
              if a["JobID"] == job and ENGINE_CLASS in a["ActorClassName"] and a["State"] in LIVE_ACTOR}  # fmt: skip
    return Footprint(frozenset(actors), frozenset(_own_groups(job)))


def engine_actors_ever() -> dict[str, int]:
    """Every engine actor this job created, alive or dead → how often Ray restarted it (a lost node, a killed actor)."""
    import ray
    from ray._private import state

    job = ray.get_runtime_context().get_job_id()
    return {aid: int(a.get("NumRestarts") or 0) for aid, a in state.actors().items()
            if a["JobID"] == job and ENGINE_CLASS in a["ActorClassName"]}  # fmt: skip


def _own_groups(job: str) -> set[str]:
    """Placement groups this driver created (not Serve's, which are named and created by its controller)."""
    from ray._private import state
    from ray.core.generated import gcs_pb2

    out = set()
    for raw in state.state._connect_and_get_accessor().get_placement_group_table():
        pg = gcs_pb2.PlacementGroupTableData.FromString(raw)
        if pg.creator_job_id.hex() == job and not pg.creator_actor_id.strip(b"\xff") and not pg.name \
                and not pg.is_detached and pg.state != gcs_pb2.PlacementGroupTableData.REMOVED:  # fmt: skip
            out.add(pg.placement_group_id.hex())
    return out


def release(before: Footprint, wait_s: float = DEATH_WAIT_S) -> Released:
    """End what was created since `before`: wait for the engine actors to die (kill the late ones), remove the
    placement groups (which also ends any actor still placed in them)."""
    import ray
    from ray.util.placement_group import PlacementGroup

    gc.collect()  # a handle kept alive by a reference cycle keeps its actor alive
    now = footprint()
    actors, groups = now.actors - before.actors, now.groups - before.groups
    for pid in groups:
        ray.util.remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(pid)))
    left = _wait_dead(actors, wait_s)
    for aid in left:  # no handle to pass to ray.kill: the pool dropped it, so kill by id
        ray._private.worker.global_worker.core_worker.kill_actor(ray.ActorID.from_hex(aid), True)
    if left:
        _wait_dead(left, wait_s)
    return Released(len(actors), len(left), len(groups))


def _wait_dead(actors: frozenset[str] | set[str], wait_s: float) -> set[str]:
    from ray._private import state

    deadline = time.monotonic() + wait_s
    alive = set(actors)
    while alive:
        alive = {a for a in alive if (state.actors(actor_id=a) or {}).get("State") in LIVE_ACTOR}
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return alive


@contextmanager
def engine_scope() -> Iterator[list[Released]]:
    """Release, on the way out (also after a failure), what the block's engine created; yields where it reports."""
    before = footprint()
    out: list[Released] = []
    try:
        yield out
    except BaseException:
        try:
            out.append(release(before))
        except Exception:  # the engine's own error is the one to report
            pass
        raise
    out.append(release(before))
