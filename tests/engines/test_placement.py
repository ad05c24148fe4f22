"""Where engines and served models ask Ray to run: one replica's bundle (spread across nodes) and a served model's
placement (custom resources on the replica actor, accelerator type on GPUs)."""

from __future__ import annotations

from evalsvc.engines.serve_llm import llm_config
from evalsvc.engines.vllm import EngineSpec, replica_bundle


def spec(**kw) -> EngineSpec:
    return EngineSpec(**{"source": "m", "engine_args": {}, "replicas": 2, "cpu": True, **kw})


def test_replica_bundle_is_what_one_engine_actor_takes():
    assert replica_bundle(spec(cpus_per_replica=3.0)) == {"CPU": 3.0}
    gpu = spec(cpu=False, gpus_per_replica=0.5, accelerator_type="L40S")
    assert replica_bundle(gpu) == {"CPU": 1, "GPU": 0.5, "accelerator_type:L40S": 0.001}
    assert replica_bundle(spec(accelerator_type="L40S")) == {"CPU": 1.0}  # CPU engines pin no accelerator


def test_served_placement_goes_to_the_replica_actor_and_the_accelerator():
    place = {"resources": {"judge_node": 1.0}, "accelerator_type": "L40S"}
    gpu = llm_config("judge", "org/judge", {}, 1, None, cpu=False, placement=place)
    assert gpu["deployment_config"]["ray_actor_options"] == {"resources": {"judge_node": 1.0}}
    assert gpu["accelerator_type"] == "L40S"
    cpu = llm_config("judge", "org/judge", {}, 1, None, cpu=True, placement=place)
    assert "accelerator_type" not in cpu and cpu["deployment_config"]["ray_actor_options"]["resources"]
    plain = llm_config("judge", "org/judge", {}, 1, None, cpu=False)
    assert "ray_actor_options" not in plain["deployment_config"] and "accelerator_type" not in plain
