"""Releasing an engine's footprint on a real local Ray: its unnamed placement groups removed, its engine actors dead
(killed when a handle still holds them), and nothing else touched (Serve's named groups, what existed before)."""

from __future__ import annotations

import pytest

from evalsvc.pipeline.release import LIVE_ACTOR, engine_scope, footprint, release

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _state(actor) -> str:
    from ray._private import state

    return state.actors(actor_id=actor._actor_id.hex())["State"]


def _pg_state(pg) -> str:
    import ray

    return ray.util.placement_group_table(pg)["state"]


def test_release_removes_the_scope_groups_and_kills_held_engine_actors(ray_local):
    ray = ray_local

    @ray.remote(num_cpus=0.1)
    class FakevLLMEngineStageUDF:  # the class name marks an engine actor, as in ray.data.llm's MapWorker(...)
        def ping(self) -> str:
            return "pong"

    older = ray.util.placement_group([{"CPU": 0.1}])  # a group made before the engine started: not the engine's
    before = footprint()
    ours = ray.util.placement_group([{"CPU": 0.1}], strategy="PACK")  # as ray.data.llm makes one per TP engine
    named = ray.util.placement_group([{"CPU": 0.1}], name="SERVE_REPLICA::judge")  # Serve names its groups
    held = FakevLLMEngineStageUDF.remote()  # a handle still held: release must kill it, not wait forever
    ray.get([ours.ready(), named.ready(), older.ready(), held.ping.remote()])
    assert held._actor_id.hex() in footprint().actors

    done = release(before, wait_s=1.0)
    assert (done.actors, done.killed, done.groups) == (1, 1, 1)
    assert _state(held) not in LIVE_ACTOR
    assert _pg_state(ours) == "REMOVED"
    assert _pg_state(named) == "CREATED" and _pg_state(older) == "CREATED"
    for pg in (named, older):
        ray.util.remove_placement_group(pg)


def test_engine_scope_releases_after_a_failure_and_keeps_the_error(ray_local):
    ray = ray_local
    with pytest.raises(RuntimeError, match="engine failed"), engine_scope() as report:
        pg = ray.util.placement_group([{"CPU": 0.1}])
        ray.get(pg.ready())
        raise RuntimeError("engine failed")
    assert report[0].groups == 1 and _pg_state(pg) == "REMOVED"
