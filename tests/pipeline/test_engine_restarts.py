"""A fatal engine error that recurs on every load ends the run after a few restarts instead of reloading forever.

Ray Data's default for actor stages is unlimited restarts and task retries; the engine stage gets a budget.
"""

from __future__ import annotations

import pytest

from evalsvc.engines.vllm import ENGINE_RESTARTS, EngineSpec, build_candidate_processor, from_engine_row, to_engine_row

pytestmark = pytest.mark.timeout(300)


@pytest.mark.slow
def test_the_engine_stage_has_a_restart_budget(ray_local, tiny_model):
    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True, batch_size=4)
    stages = build_candidate_processor(spec, to_engine_row, from_engine_row).stages
    engine = [s for name, s in stages.items() if "vLLMEngine" in name]
    assert len(engine) == 1
    kwargs = engine[0].map_batches_kwargs
    assert kwargs["max_restarts"] == ENGINE_RESTARTS and kwargs["max_task_retries"] == -1  # tasks wait out a restart
    assert all("max_restarts" not in s.map_batches_kwargs for name, s in stages.items() if "vLLMEngine" not in name)
    # the engine's actor renders the chat template, the engine tokenizes and detokenizes: no actors of their own
    assert not [name for name in stages if "tokenize" in name.lower() or "ChatTemplate" in name]


@pytest.mark.slow
def test_runs_leave_per_request_stats_off_so_a_wholly_failed_batch_joins_the_others(ray_local, tiny_model):
    """With stats on, a batch whose rows all failed carries `metrics` as nulls and a successful one as structs, and
    Ray Data cannot concatenate the two blocks (a run with one over-long prompt failed whole); the bench keeps them."""
    import pyarrow as pa
    from ray.data._internal.arrow_ops.transform_pyarrow import concat

    from evalsvc.perf.grid import vllm_stage

    def engine_kwargs(stages):
        (engine,) = [s for name, s in stages.items() if "vLLMEngine" in name]
        return engine.fn_constructor_kwargs["engine_kwargs"]

    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True, batch_size=4)
    assert engine_kwargs(build_candidate_processor(spec, to_engine_row, from_engine_row).stages)["disable_log_stats"]
    assert not engine_kwargs(vllm_stage(spec).stages)["disable_log_stats"]
    failed = pa.Table.from_pylist([{"__data": {"generated_text": "", "metrics": None}}])
    with_stats = pa.Table.from_pylist([{"__data": {"generated_text": "ok", "metrics": {"queued_ts": 1.0}}}])
    with pytest.raises(TypeError):
        concat([with_stats, failed])
    without = pa.Table.from_pylist([{"__data": {"generated_text": "ok", "metrics": None}}])
    assert concat([without, failed]).num_rows == 2


@pytest.mark.slow
def test_replicas_of_one_checkpoint_get_a_spread_group_with_a_bundle_each(ray_local, tiny_model):
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from evalsvc.pipeline.release import engine_scope

    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=2, cpu=True, cpus_per_replica=1.5)
    with engine_scope() as released:
        stages = build_candidate_processor(spec, to_engine_row, from_engine_row).stages
        (engine,) = [s for name, s in stages.items() if "vLLMEngine" in name]
        compute = engine.map_batches_kwargs["compute"]
        assert (compute.min_size, compute.max_size) == (2, 2)  # a fixed pool: every replica loads, not 1..2
        strategy = engine.map_batches_kwargs["scheduling_strategy"]
        assert isinstance(strategy, PlacementGroupSchedulingStrategy)
        table = ray_local.util.placement_group_table(strategy.placement_group)
        assert table["strategy"] == "SPREAD" and list(table["bundles"].values()) == [{"CPU": 1.5}] * 2
    assert released[0].groups == 1  # the engine's group goes with the engine
    assert ray_local.util.placement_group_table(strategy.placement_group)["state"] == "REMOVED"
    one = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True)
    stages = build_candidate_processor(one, to_engine_row, from_engine_row).stages
    assert all("scheduling_strategy" not in s.map_batches_kwargs for s in stages.values())


@pytest.mark.slow
def test_the_engine_stage_asks_for_final_outputs_only_and_keeps_its_cpu_bundle(ray_local, tiny_model):
    """evalsvc's engine class stands in for ray.data.llm's in the stage, with the stage's actor arguments as they were
    (validating the stage again would turn the CPU bundle into a GPU request, and the actor would never start)."""
    from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMEngineStageUDF as RayStage
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    from evalsvc.engines.vllm_stage import final_output_only, vLLMEngineStageUDF

    params = SamplingParams(max_tokens=4)
    final_output_only(params)
    assert params.output_kind is RequestOutputKind.FINAL_ONLY  # the stage keeps only the finished output anyway
    spec = EngineSpec(source=str(tiny_model), engine_args={}, replicas=1, cpu=True, cpus_per_replica=1.5)
    (engine,) = [s for n, s in build_candidate_processor(spec, to_engine_row, from_engine_row).stages.items()
                 if "vLLMEngine" in n]  # fmt: skip
    assert engine.fn is vLLMEngineStageUDF and issubclass(engine.fn, RayStage)
    assert engine.fn.__name__ == RayStage.__name__  # the class name the actor table and the watchers look for
    assert engine.fn_constructor_kwargs["chat_template"] is None  # the checkpoint's own template
    args = engine.get_dataset_map_batches_kwargs(batch_size=4, data_column="__data")
    assert args.get("num_gpus", 0) == 0 and args["num_cpus"] == 1.5
