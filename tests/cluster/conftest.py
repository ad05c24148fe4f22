"""A multi-node Ray cluster on this machine (ray.cluster_utils.Cluster: a head and worker raylets, each a node), and
watchers over Ray's actor and placement-group tables."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

ENGINE_CLASS = "vLLMEngineStageUDF"
LIVE = ("DEPENDENCIES_UNREADY", "PENDING_CREATION", "ALIVE", "RESTARTING")
# How soon the head declares a killed node dead: Ray's defaults (a check every 3 s, dead after 5 failed ones) leave
# a lost node's actors and tasks hanging ~15 s before anything is redone. A killed raylet refuses the check at
# once, so 3 failures 1 s apart are as sure and take ~3 s (a check that times out still waits Ray's 10 s for each).
HEALTH_CHECK = {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@contextmanager
def joined_cluster(worker_ips: tuple[str | None, ...] = (None, None), worker_cpus: int = 8, head_cpus: int = 2,
                   worker_resources: tuple[dict, ...] = ()) -> Iterator:  # fmt: skip
    """A head (the driver's node) and one worker per entry of `worker_ips` (None: the head's IP; a 127.0.0.x address
    makes a node look like another host) with `worker_resources[i]` custom resources, joined by this process."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # a session-wide local Ray from another test folder: this module needs its own
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": False,
                                                      "_system_config": HEALTH_CHECK})  # fmt: skip
    extra = list(worker_resources) + [{}] * (len(worker_ips) - len(worker_resources))
    workers = [c.add_node(num_cpus=worker_cpus, resources=res, **({"node_ip_address": ip} if ip else {}))
               for ip, res in zip(worker_ips, extra)]  # fmt: skip
    c.wait_for_nodes()
    if ray.is_initialized():  # a thread left by an earlier local Ray (a Serve handle's metrics) may re-init one
        ray.shutdown()
    ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    try:
        yield c, workers
    finally:
        _leave(c)


def _leave(c) -> None:
    """Disconnect and stop the cluster. A Serve handle made in this process keeps a thread that may connect again
    right after `ray.shutdown` (and Cluster refuses to remove a node a driver is connected to): shut Serve down
    first, and disconnect again until the cluster can go."""
    import sys

    import ray

    if "ray.serve" in sys.modules:
        try:
            sys.modules["ray.serve"].shutdown()
        except Exception:  # noqa: BLE001 - best effort: the cluster goes next anyway
            pass
    for _ in range(5):
        ray.shutdown()
        try:
            c.shutdown()
            return
        except ValueError:  # "a node that is connected to this Ray client": something connected again
            time.sleep(1)
    c.shutdown()


@pytest.fixture(scope="module")
def cluster():
    """Head + two 8-CPU workers, all on this host's IP (local folders are shared, as on one machine)."""
    with joined_cluster() as c:
        yield c


def actors_of(class_part: str, live_only: bool = True) -> dict[str, dict]:
    """Actors whose class name contains `class_part`, from the GCS actor table."""
    from ray._private import state

    return {aid: a for aid, a in state.actors().items()
            if class_part in a["ActorClassName"] and (a["State"] in LIVE or not live_only)}  # fmt: skip


def engine_actors_alive() -> dict[str, dict]:
    """vLLM engine actors not yet dead, from the GCS actor table (the state API needs the dashboard)."""
    from ray._private import state

    return {aid: a for aid, a in state.actors().items() if ENGINE_CLASS in a["ActorClassName"] and a["State"] in LIVE}


def engine_placement_groups() -> dict[str, dict]:
    """Placement groups not removed that no Serve replica owns (ray.data.llm's are unnamed)."""
    from ray.util import placement_group_table

    return {pid: pg for pid, pg in placement_group_table().items() if pg["state"] != "REMOVED" and not pg["name"]}


@dataclass
class Watch:
    """Samples the actor and placement-group tables in a thread: the most engine actors alive at once."""

    interval_s: float = 0.1
    peak_actors: int = 0
    peak_groups: int = 0
    samples: int = 0
    seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            alive = engine_actors_alive()
            self.seen |= set(alive)
            self.peak_actors = max(self.peak_actors, len(alive))
            self.peak_groups = max(self.peak_groups, len(engine_placement_groups()))
            self.samples += 1
            time.sleep(self.interval_s)
