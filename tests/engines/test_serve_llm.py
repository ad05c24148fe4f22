"""engines.serve_llm: the names evalsvc's Serve apps and their replica actors carry, and what their configs skip."""

from __future__ import annotations

import os

import pytest


def test_a_replica_actor_names_its_app_and_other_actors_name_none():
    """How a live status tells evalsvc's judge and guard replicas from every other actor in Ray's table."""
    from evalsvc.engines.serve_llm import AppDeployment, replica_app

    dep = AppDeployment("judge_app", "judge-423ef4b3")
    assert replica_app(f"ServeReplica:{dep.app_name}:{dep.deployment}") == "judge_app"
    assert replica_app("ServeReplica:judge_app:LLMServer:judge-423ef4b3") is None  # a deployment not built by evalsvc
    assert replica_app("ServeController") is None
    assert replica_app("MapWorker(MapBatches(vLLMEngineStageUDF))") is None


def test_only_a_cloud_storage_source_keeps_ray_serve_llms_node_initialisation():
    """The node-initialisation task only fetches sources from cloud storage; for a folder or a hub id it would import
    torch and transformers in a process of its own to hand the source back, so the app's callback skips it."""
    from evalsvc.engines.serve_llm import SOURCE_ON_NODE, llm_config

    for source in ("/models/judge", "org/judge"):
        assert llm_config("judge", source, {}, 1, None, cpu=True)["callback_config"] == {"callback_class": SOURCE_ON_NODE}
    assert "callback_config" not in llm_config("judge", "s3://bucket/judge", {}, 1, None, cpu=False)


@pytest.mark.slow  # the replica module imports Ray Serve LLM's vLLM engine
def test_the_replicas_callback_turns_node_initialisation_off():
    import asyncio

    from ray.llm._internal.common.utils.import_utils import load_class

    from evalsvc.engines.serve_llm import SOURCE_ON_NODE

    callback = load_class(SOURCE_ON_NODE)(llm_config=None)
    assert callback.ctx.run_init_node
    asyncio.run(callback.on_before_node_init())
    assert not callback.ctx.run_init_node


@pytest.mark.slow  # the replica module imports Ray Serve LLM's vLLM engine
def test_a_one_worker_cpu_engine_core_gets_the_workers_threads(monkeypatch):
    """The replica gives a one-worker engine core its worker (vLLM's uniprocess executor); the core must then compute
    on the threads VLLM_CPU_OMP_THREADS_BIND names, as the worker would have, not on the one thread Ray sets for a
    one-CPU actor. Its process is spawned inside the engine start, so the environment there is what it gets."""
    from types import SimpleNamespace

    from evalsvc.engines.serve_llm import replica

    seen = {}

    def start(self, engine_args, vllm_config, placement_group):
        seen.update(backend=vllm_config.parallel_config.distributed_executor_backend,
                    threads=os.environ.get("OMP_NUM_THREADS"))  # fmt: skip
        return "engine"

    monkeypatch.setattr(replica, "_start_engine", start)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Ray sets in a one-CPU actor
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    parallel = SimpleNamespace(distributed_executor_backend="mp", world_size=1, local_world_size=1,
                               data_parallel_rank_local=0, _api_process_count=1)  # fmt: skip
    config = SimpleNamespace(parallel_config=parallel, kv_transfer_config=None)
    assert replica._start_engine_in_one_process(None, None, config, None) == "engine"
    assert seen == {"backend": "uni", "threads": "2"}
    assert os.environ["OMP_NUM_THREADS"] == "1"  # the replica's own settings come back after the spawn

    parallel.distributed_executor_backend, parallel.world_size, seen = "mp", 2, {}
    replica._start_engine_in_one_process(None, None, config, None)  # two workers: left to vLLM's executor
    assert seen == {"backend": "mp", "threads": "1"}
