"""engines.serve_llm without Ray: the names evalsvc's Serve apps and their replica actors carry."""

from __future__ import annotations


def test_a_replica_actor_names_its_app_and_other_actors_name_none():
    """How a live status tells evalsvc's judge and guard replicas from every other actor in Ray's table."""
    from evalsvc.engines.serve_llm import AppDeployment, replica_app

    dep = AppDeployment("judge_app", "judge-423ef4b3")
    assert replica_app(f"ServeReplica:{dep.app_name}:{dep.deployment}") == "judge_app"
    assert replica_app("ServeReplica:judge_app:LLMServer:judge-423ef4b3") is None  # a deployment not built by evalsvc
    assert replica_app("ServeController") is None
    assert replica_app("MapWorker(MapBatches(vLLMEngineStageUDF))") is None
