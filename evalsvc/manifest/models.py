"""The candidates of a manifest: open checkpoints, LoRA adapters of a checkpoint, and OpenAI-compatible endpoints.

Also the sampling parameters they generate with (manifest-wide, with per-model overrides).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from evalsvc.manifest.base import EngineArgs, Name, Strict, check_env_ref, check_url


class Sampling(Strict):
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(256, ge=1, le=32768, description="Most new tokens per answer.")
    seed: int = Field(0, ge=0, description="Base seed; sample k of an item uses seed + k.")
    n: int = Field(1, ge=1, le=64, description="Samples per item (each becomes its own record).")


class SamplingOverride(Strict):
    temperature: float | None = Field(None, ge=0.0, le=5.0, description="Overrides sampling.temperature.")
    top_p: float | None = Field(None, gt=0.0, le=1.0, description="Overrides sampling.top_p.")
    max_tokens: int | None = Field(None, ge=1, le=32768, description="Overrides sampling.max_tokens.")
    seed: int | None = Field(None, ge=0, description="Overrides sampling.seed.")
    n: int | None = Field(None, ge=1, le=64, description="Overrides sampling.n.")


class Endpoint(Strict):
    """An OpenAI-compatible chat endpoint as a candidate (a closed model, or a vLLM server already running)."""

    url: str = Field(description="Base URL ending in /v1, e.g. https://api.example.com/v1.")
    model_name: str = Field(description="The model name to request from the endpoint.")
    api_key: str | None = Field(None, description="An env reference like ${OPENAI_API_KEY}; never the key itself.")
    qps: float | None = Field(None, gt=0, le=10_000, description="Most requests per second, summed over the run.")
    concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    max_retries: int = Field(3, ge=0, le=20, description="Retries of a failed request (429, 5xx, network).")
    timeout_s: float = Field(120.0, gt=0, le=3600, description="Per-request timeout in seconds.")
    usd_per_1m_prompt_tokens: float | None = Field(None, ge=0, description="Price of 1M prompt tokens (cost report).")
    usd_per_1m_completion_tokens: float | None = Field(None, ge=0, description="Price of 1M completion tokens.")

    @field_validator("api_key")
    @classmethod
    def _key_ref(cls, v: str | None) -> str | None:
        return check_env_ref(v, "`api_key`", "${OPENAI_API_KEY}")

    @model_validator(mode="after")
    def _url(self) -> Endpoint:
        problems = check_url(self.url, self.model_name)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Model(Strict):
    name: Name = Field(description="Short name used in results and paths.")
    source: str | None = Field(
        None,
        description="Checkpoint: a Hugging Face id, a local folder, an s3:// prefix, or 'evalsvc://smollm2' / "
        "'evalsvc://tiny' for the models `evalsvc models prepare` builds.",
    )
    revision: str | None = Field(None, description="Hub revision or commit of `source`; part of the record key.")
    engine: Literal["vllm"] = Field("vllm", description="Inference engine of a checkpoint.")
    engine_args: EngineArgs = Field(default_factory=EngineArgs, description="vLLM engine arguments.")
    replicas: int = Field(1, ge=1, le=1024, description="Engine replicas (data-parallel actors).")
    chat_template: str | None = Field(None, description="Jinja chat template overriding the tokenizer's.")
    sampling: SamplingOverride | None = Field(None, description="Per-model overrides of the manifest's sampling.")
    base: str | None = Field(None, description="LoRA form: the `name` of the base model entry this adapter runs on.")
    adapter: str | None = Field(None, description="LoRA form: adapter folder (local or s3://).")
    endpoint: Endpoint | None = Field(None, description="Endpoint form: an OpenAI-compatible API as the candidate.")

    @model_validator(mode="after")
    def _one_form(self) -> Model:
        forms = [f for f, on in (("source", bool(self.source)), ("base/adapter", self.base is not None or
                 self.adapter is not None), ("endpoint", self.endpoint is not None)) if on]  # fmt: skip
        if not forms:
            raise ValueError("set `source` (a checkpoint), `base` + `adapter` (a LoRA adapter) or `endpoint` (an API)")
        if forms == ["source", "base/adapter"]:
            raise ValueError("a LoRA entry takes its checkpoint from `base`: remove `source`")
        if len(forms) > 1:
            raise ValueError(f"choose one form of model, not {' and '.join(forms)}: a LoRA entry takes its checkpoint "
                             "from `base`, an endpoint needs no checkpoint")  # fmt: skip
        if (self.adapter is None) != (self.base is None):
            raise ValueError("a LoRA entry needs both `base` (a model name) and `adapter` (a folder)")
        if self.endpoint is not None:
            engine_only = [f for f in ("engine_args", "replicas", "chat_template", "revision") if f in self.model_fields_set]
            if engine_only:
                raise ValueError(f"{', '.join(engine_only)}: not used by an `endpoint` model (the server decides); remove")
        return self

    @property
    def form(self) -> str:
        return "endpoint" if self.endpoint else "lora" if self.adapter else "checkpoint"
