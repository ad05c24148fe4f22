"""The manifest a user writes: models × benchmarks × strategies, sampling, judge, output, resources.

Every model forbids unknown keys and documents each field; cross-field checks live in `Manifest`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from evalsvc.manifest.base import (  # noqa: F401  (re-exported: the manifest's public names live here)
    ENV_REF_RE,
    NAME_RE,
    Backend,
    EngineArgs,
    Name,
    ServedModel,
    Strict,
    as_text,
    check_env_ref,
    check_uri,
)
from evalsvc.manifest.judging import Calibration, Guardrail, Judge, JudgeMember, guardrail_entries  # noqa: F401
from evalsvc.manifest.models import Endpoint, Model, Sampling, SamplingOverride  # noqa: F401
from evalsvc.store.row import BenchmarkKind

BUILTIN_STRATEGIES = ("basic", "cot", "safety", "cot_safety")
BUILTIN_DATASETS = ("medsafetybench", "medguard", "medharm")
DATASET_KINDS = {"medsafetybench": "harm", "medguard": "mcq", "medharm": "high_risk"}


class Selection(Strict):
    limit: int | None = Field(None, ge=1, le=10_000_000, description="Keep the first N items (after filters).")
    sample: int | None = Field(None, ge=1, le=10_000_000, description="Keep a seeded random sample of N items.")
    per: str | None = Field(None, description="With limit/sample: apply per value of this field (e.g. principle).")
    seed: int = Field(0, ge=0, description="Seed of `sample`.")

    @model_validator(mode="after")
    def _one_of(self) -> Selection:
        if self.limit is not None and self.sample is not None:
            raise ValueError("use either `limit` or `sample`, not both")
        if self.per is not None and self.limit is None and self.sample is None:
            raise ValueError("`per` needs `limit` or `sample`")
        return self


class ColumnMap(Strict):
    item_id: str | None = Field(None, description="Column with a stable item id (default: row number).")
    text: str = Field("question", description="Column with the request or question.")
    options: str | None = Field(None, description="MCQ: column holding a {letter: text} mapping or a list.")
    option_columns: dict[str, str] | None = Field(None, description="MCQ: letter → column, e.g. {A: opa, B: opb}.")
    answer: str | None = Field(None, description="MCQ: column with the correct letter.")
    reference: str | None = Field(None, description="Column with a reference (safe) response.")
    categories: dict[str, str] = Field(
        default_factory=dict,
        description="Record field → column, fields among principle, source, aspect, category, "
        "expected_behavior, question_type, control.",
    )


class Benchmark(Strict):
    name: Name = Field(description="Short name used in results and paths.")
    dataset: str | None = Field(None, description=f"A built-in dataset: one of {', '.join(BUILTIN_DATASETS)}.")
    path: str | None = Field(None, description="A custom file (JSONL, CSV, Parquet), local or s3://.")
    format: BenchmarkKind | None = Field(
        None,
        description="Custom files: harm (judged 1-5), mcq (parsed), high_risk (behaviour judge), rubric "
        "(HealthBench-format conversations, each criterion graded).",
    )
    columns: ColumnMap | None = Field(None, description="Custom files: which column holds what.")
    split: str | None = Field(None, description="Built-ins: test, train, llama3 (MedSafetyBench) or sample.")
    filters: dict[str, list[str]] = Field(
        default_factory=dict, description="Keep items whose field is one of the values, e.g. {principle: ['1','2']}."
    )
    select: Selection = Field(default_factory=Selection, description="limit / seeded sample of items.")
    version: str | None = Field(None, description="Custom files: a version label recorded with each record.")

    @field_validator("filters", mode="before")
    @classmethod
    def _values_as_text(cls, v: Any) -> Any:
        # YAML reads `principle: [1, 2]` / `control: [true]` as numbers and booleans; items carry them as text.
        if not isinstance(v, dict):
            return v
        return {k: [as_text(x) for x in vals] if isinstance(vals, list) else vals for k, vals in v.items()}

    @field_validator("path")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        return None if v is None else check_uri(v)

    @model_validator(mode="after")
    def _dataset_or_path(self) -> Benchmark:
        if (self.dataset is None) == (self.path is None):
            raise ValueError("set exactly one of `dataset` (built-in) or `path` (custom file)")
        if self.dataset is not None and self.dataset not in BUILTIN_DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(BUILTIN_DATASETS)}")
        if self.path is not None and self.format is None:
            raise ValueError("a custom file needs `format`: harm, mcq, high_risk or rubric")
        if self.dataset is not None and (self.format or self.columns):
            raise ValueError("`format` and `columns` are for custom files (`path`), not built-in datasets")
        if self.format == "rubric" and self.columns is not None:
            raise ValueError("format rubric reads the HealthBench layout (prompt, rubrics, example_tags, prompt_id) "
                             "as it is: remove `columns`")  # fmt: skip
        return self

    @property
    def kind(self) -> str:
        return DATASET_KINDS[self.dataset] if self.dataset else str(self.format)


class CustomStrategy(Strict):
    name: Name = Field(description="Strategy name.")
    system: str | None = Field(None, description="System message (none if empty).")
    user_template: str = Field(
        "{question}", description="User message; placeholders {question} and, for MCQ, {options}."
    )
    answer_format: str | None = Field(None, description="Instruction appended to the user message.")

    @field_validator("user_template")
    @classmethod
    def _has_question(cls, v: str) -> str:
        if "{question}" not in v:
            raise ValueError("must contain the {question} placeholder")
        allowed = {"question", "options"}
        used = set(re.findall(r"\{([a-zA-Z_]+)\}", v))
        if used - allowed:
            raise ValueError(f"unknown placeholders {sorted(used - allowed)}: use only {{question}} and {{options}}")
        return v


StrategySpec = Annotated[
    str | CustomStrategy,
    Field(description=f"A built-in ({', '.join(BUILTIN_STRATEGIES)}) or a custom strategy."),
]


class S3Options(Strict):
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint, e.g. http://127.0.0.1:8333 (or ${VAR}).")
    region: str = Field("us-east-1", description="S3 region.")
    access_key_id: str | None = Field(None, description="Env reference like ${AWS_ACCESS_KEY_ID}; default: AWS chain.")
    secret_access_key: str | None = Field(None, description="Env reference like ${AWS_SECRET_ACCESS_KEY}.")
    session_token: str | None = Field(None, description="Env reference like ${AWS_SESSION_TOKEN} (temporary keys).")

    @field_validator("access_key_id", "secret_access_key", "session_token")
    @classmethod
    def _env_ref(cls, v: str | None) -> str | None:
        if v is not None and not ENV_REF_RE.match(v):
            raise ValueError("credentials are given only by env reference, like ${AWS_SECRET_ACCESS_KEY}")
        return v


class Output(Strict):
    uri: str = Field(description="Where runs go: s3://bucket/prefix or a local folder.")
    s3: S3Options = Field(default_factory=S3Options, description="S3 connection (for s3:// URIs).")
    cache: bool | str = Field(
        True,
        description="Reuse generations (and judgements by the same judge and rubric version) of earlier runs: "
        "true = runs under this output root, a URI = runs under that root (same S3 connection), false = never.",
    )
    shared_filesystem: bool = Field(
        False,
        description="Local paths in this manifest (the output folder, model and adapter folders, rubric files) are "
        "on a filesystem mounted at the same path on every Ray node; without it a multi-host cluster refuses them.",
    )

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        return check_uri(v)

    @field_validator("cache")
    @classmethod
    def _cache(cls, v: bool | str) -> bool | str:
        return check_uri(v) if isinstance(v, str) else v


class Resources(Strict):
    cpus_per_replica: float = Field(1.0, gt=0, le=256, description="CPUs per engine replica.")
    gpus_per_replica: float = Field(0.0, ge=0, le=64, description="GPUs per replica (0 = CPU engine; <1 = shared GPU).")
    accelerator_type: str | None = Field(None, description="Ray accelerator type to pin, e.g. A100, H100, L4.")
    max_concurrent_models: int = Field(1, ge=1, le=256, description="Checkpoints generating at the same time.")
    batch_size: int = Field(64, ge=1, le=4096, description="Rows per Ray Data batch sent to an engine.")
    max_concurrent_batches: int = Field(8, ge=1, le=256, description="Batches in flight per engine replica.")


class Manifest(Strict):
    name: Name = Field(description="Name of this evaluation.")
    description: str | None = Field(None, description="Free text shown in reports.")
    models: list[Model] = Field(min_length=1, description="Candidates: checkpoints, LoRA adapters, endpoints.")
    benchmarks: list[Benchmark] = Field(min_length=1, description="Benchmarks to run.")
    strategies: list[StrategySpec] = Field(min_length=1, description="Prompt strategies.")
    sampling: Sampling = Field(default_factory=Sampling, description="Candidate sampling parameters.")
    judge: Judge | None = Field(None, description="The judge (or jury) for harm and high-risk benchmarks.")
    guardrails: list[Guardrail] = Field(
        default_factory=list,
        description="Guardrail models as a grid axis (`none` = the unguarded arm); empty = no guardrail axis.",
    )
    output: Output = Field(description="Output location.")
    resources: Resources = Field(default_factory=Resources, description="Per-replica resources and concurrency.")

    @field_validator("strategies")
    @classmethod
    def _known_builtins(cls, v: list[Any]) -> list[Any]:
        for s in v:
            if isinstance(s, str) and s not in BUILTIN_STRATEGIES:
                raise ValueError(
                    f"unknown strategy {s!r}: choose from {', '.join(BUILTIN_STRATEGIES)} or define it inline "
                    "({name, system, user_template, answer_format})"
                )
        return v

    @field_validator("guardrails", mode="before")
    @classmethod
    def _none_arm(cls, v: Any) -> Any:
        return guardrail_entries(v)

    @model_validator(mode="after")
    def _cross(self) -> Manifest:
        problems = []
        for label, names in (
            ("models", [m.name for m in self.models]),
            ("benchmarks", [b.name for b in self.benchmarks]),
            ("strategies", [strategy_name(s) for s in self.strategies]),
            ("guardrails", [g.name for g in self.guardrails]),
        ):
            dup = sorted({n for n in names if names.count(n) > 1})
            if dup:
                problems.append(f"{label}: duplicate names {dup}: give each entry its own name")
        by_name = {m.name: m for m in self.models}
        for i, m in enumerate(self.models):
            if m.base is not None:
                base = by_name.get(m.base)
                if base is None or base.form != "checkpoint":
                    problems.append(f"models.{i}.base: {m.base!r} is not a checkpoint entry in models")
        if self.judge is None:
            for i, b in enumerate(self.benchmarks):
                if b.kind != "mcq":
                    problems.append(f"benchmarks.{i} ({b.name}) is judged ({b.kind}): add a `judge` section")
        if problems:
            raise ValueError("\n".join(problems))  # one line per problem; load.format_errors splits them
        return self


def strategy_name(s: str | CustomStrategy) -> str:
    return s if isinstance(s, str) else s.name
