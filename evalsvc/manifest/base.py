"""Building blocks shared by every manifest section: strict models, names, env references, URIs, served backends.

A backend is an open model evalsvc serves on Ray Serve (`model`) or an external OpenAI-compatible endpoint (`url`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalsvc.envref import ENV_REF_RE

NAME_RE = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
URL_RE = re.compile(r"^https?://[^\s/]+")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[
    str,
    Field(pattern=NAME_RE, description="Lower-case name: letters, digits, '_', '.', '-' (used in paths and cell ids)."),
]


class EngineArgs(Strict):
    model_config = ConfigDict(extra="allow", frozen=True)  # other vLLM engine kwargs pass through unchanged
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one replica's engine spans.")
    max_model_len: int | None = Field(None, ge=16, description="Context length; prompt + answer must fit.")
    dtype: str | None = Field(None, description="Weights dtype: auto, float32, bfloat16, float16.")
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0, description="Share of GPU memory vLLM may use.")
    enforce_eager: bool | None = Field(None, description="Disable CUDA graphs / compilation (faster start-up).")
    quantization: str | None = Field(None, description="vLLM quantization method, e.g. awq, gptq, fp8.")
    enable_lora: bool | None = Field(None, description="Serve LoRA adapters on this engine (set automatically).")
    max_loras: int | None = Field(None, ge=1, le=1024, description="LoRA adapters one engine batch may mix.")
    max_lora_rank: int | None = Field(None, ge=1, le=1024, description="Largest LoRA rank the engine accepts.")


class Placement(Strict):
    """Where Ray may put a served model's replicas: nodes that have these custom resources / this accelerator."""

    resources: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources each replica takes, e.g. {judge_node: 1} for nodes started with "
        "`ray start --resources '{\"judge_node\": 1}'` (KubeRay: rayStartParams.resources).",
    )
    accelerator_type: str | None = Field(None, description="GPU engines: a Ray accelerator type, e.g. L40S, H100.")

    @field_validator("resources")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        sized = sorted(set(v) & {"CPU", "GPU", "memory", "object_store_memory"})
        if sized:
            raise ValueError(f"{sized}: CPUs and GPUs are sized by the engine; list only custom resources here")
        bad = sorted(k for k, x in v.items() if not (0 < x <= 1024) or not re.match(r"^[A-Za-z0-9_.:/-]{1,64}$", k))
        if bad:
            raise ValueError(f"{bad}: a custom resource is a name (letters, digits, _ . : / -) and an amount in (0, 1024]")
        return v


class ServedModel(Strict):
    source: str = Field(description="Checkpoint (same forms as a model source).")
    revision: str | None = Field(None, description="Revision of the checkpoint.")
    engine_args: EngineArgs = Field(default_factory=EngineArgs, description="vLLM engine arguments.")
    replicas: int = Field(1, ge=1, le=256, description="Serve replicas (min=max unless autoscale is set).")
    max_replicas: int | None = Field(None, ge=1, le=256, description="Autoscale up to this many replicas.")
    placement: Placement | None = Field(None, description="Pin the replicas to nodes (custom resources, accelerator).")


class Backend(Strict):
    """An open model served by evalsvc on Ray Serve, or an external OpenAI-compatible endpoint."""

    model: ServedModel | None = Field(None, description="An open model served by evalsvc on Ray Serve.")
    url: str | None = Field(None, description="An external OpenAI-compatible base URL (…/v1) instead of `model`.")
    model_name: str | None = Field(None, description="With `url`: the model name to request.")
    api_key: str | None = Field(None, description="With `url`: an env reference like ${JUDGE_API_KEY}.")

    @field_validator("api_key")
    @classmethod
    def _key_ref(cls, v: str | None) -> str | None:
        return check_env_ref(v, "`api_key`", "${JUDGE_API_KEY}")

    def backend_problems(self, required: bool = True) -> list[str]:
        """What is wrong with the backend choice (empty when fine); `required=False` allows neither."""
        if self.model is None and self.url is None:
            return ["set exactly one of `model` (served by evalsvc) or `url` (external endpoint)"] if required else []
        if self.model is not None and self.url is not None:
            return ["set exactly one of `model` (served by evalsvc) or `url` (external endpoint)"]
        if self.url is not None:
            return check_url(self.url, self.model_name)
        return []

    @property
    def label(self) -> str:
        """What the backend is, for records and cache matching (no credentials)."""
        if self.model is not None:
            return self.model.source + (f"@{self.model.revision}" if self.model.revision else "")
        return f"{self.url}#{self.model_name}" if self.url else ""


def check_url(url: str, model_name: str | None) -> list[str]:
    problems = []
    if not URL_RE.match(url):
        problems.append(f"`url` must be an http(s) URL, got {url!r}")
    if not model_name:
        problems.append("an external `url` needs `model_name`")
    return problems


def check_env_ref(v: str | None, what: str, example: str) -> str | None:
    if v is not None and not ENV_REF_RE.match(v):
        raise ValueError(f"{what} must be an env reference like {example}, never the key itself")
    return v


def check_uri(v: str) -> str:
    """A local path or s3://bucket/prefix, without '..' segments."""
    if not v.strip():
        raise ValueError("must not be empty")
    if "://" in v and not v.startswith("s3://"):
        raise ValueError(f"only s3:// URIs or local paths are supported, got {v!r}")
    if v.startswith("s3://") and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", v):
        raise ValueError(f"{v!r} is not a valid s3://bucket/prefix (bucket: 3-63 lower-case letters, digits, '.', '-')")
    if ".." in v.split("/"):
        raise ValueError("must not contain '..'")
    return v


def as_text(x: Any) -> Any:
    """YAML reads `[1, 2]` / `[true]` as numbers and booleans; items carry such values as text."""
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x) if isinstance(x, int) else x
