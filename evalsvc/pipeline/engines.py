"""What runs a checkpoint's generations: its vLLM engine spec (base + LoRA adapters on one load) or, for an
endpoint candidate, the HTTP processor. Built by the driver from the plan, one per engine.
"""

from __future__ import annotations

from evalsvc.engines.vllm import EngineSpec
from evalsvc.plan.grid import Plan
from evalsvc.store.uri import S3Conn


def endpoint_processor(plan: Plan, engine: str):
    from evalsvc.engines.http import build_endpoint_processor, endpoint_spec

    m = plan.model(engine)
    field = f"models.{[x.name for x in plan.manifest.models].index(engine)}.endpoint"
    return build_endpoint_processor(endpoint_spec(m.endpoint, field, plan.manifest.resources.batch_size))


def engine_spec(plan: Plan, engine: str) -> EngineSpec:
    from evalsvc.engines.prepare import resolve_model_source

    m = plan.model(engine)
    res = plan.manifest.resources
    source = resolve_model_source(m.source)
    lora = None
    if any(p.adapter for p in plan.models if p.engine == engine):  # one engine load serves the base and its adapters
        from evalsvc.engines.lora import serve_adapters

        lora = serve_adapters(plan.manifest, engine, source, S3Conn.from_options(plan.manifest.output.s3))
    return EngineSpec(
        source=source,
        engine_args=lora.engine_args if lora else m.engine_args,
        replicas=m.replicas,
        cpu=res.gpus_per_replica == 0,
        cpus_per_replica=res.cpus_per_replica,
        gpus_per_replica=res.gpus_per_replica or 1.0,
        accelerator_type=res.accelerator_type,
        batch_size=res.batch_size,
        max_concurrent_batches=res.max_concurrent_batches,
        chat_template=m.chat_template,
        lora_dir=lora.dynamic_path if lora else None,
        lora_models=lora.row_models if lora else None,
    )
