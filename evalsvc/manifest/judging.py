"""Who scores and who guards: the judge (one model or a jury), its calibration slice, and guardrail models.

Each is a Backend: an open model evalsvc serves on Ray Serve, or an external OpenAI-compatible URL.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from evalsvc.manifest.base import NAME_RE, Backend, Name, Strict, as_text, check_uri
from evalsvc.store.row import JudgedKind, LabelledKind

DEFAULT_PROBES = 16  # known-answer probes per judged kind: judge health is on in every run unless set to 0
MAX_PROBES = 500
GUARD_FORMATS = ("llama-guard", "guard-classifier", "llama-guard-3", "qwen3guard", "wildguard", "shieldgemma",
                 "granite-guardian")  # fmt: skip
CONTROVERSIAL = {"unsafe": "a Controversial verdict blocks (Qwen3Guard's strict reading)",
                 "safe": "a Controversial verdict passes (its loose reading)"}  # fmt: skip


class JudgeMember(Backend):
    name: Name = Field(description="Name of this juror (used in votes and agreement tables).")

    @model_validator(mode="after")
    def _backend(self) -> JudgeMember:
        problems = self.backend_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Calibration(Strict):
    """Records with reference labels (human ratings) the judge also scores, to show how far to trust it."""

    path: str = Field(description="JSONL, CSV or Parquet file (local or s3://) of question, response and label.")
    kind: LabelledKind = Field(description="Rubric the labels follow: harm (1-5 scores) or high_risk (behaviour labels).")
    question: str = Field("question", description="Column with the request shown to the candidate.")
    response: str = Field("response", description="Column with the answer to be judged.")
    label: str = Field("label", description="Column with the reference: a 1-5 score (harm) or a behaviour label.")
    item_id: str | None = Field(None, description="Column with a stable id (default: row number).")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_uri(v)


class Judge(Backend):
    members: list[JudgeMember] = Field(
        default_factory=list, description="A jury: two or more judges instead of one `model` / `url`."
    )
    aggregate: Literal["mean", "median", "majority"] = Field(
        "mean", description="How a jury's votes combine: mean or median of scores; majority of labels (and scores)."
    )
    calibration: Calibration | None = Field(None, description="A labelled slice scored by the judge(s) in every run.")
    probes: int = Field(
        DEFAULT_PROBES, ge=0, le=MAX_PROBES,
        description="Known-answer probes per judged kind scored beside the grid (judge health), the known-safe and "
        "known-unsafe anchors taking turns; never part of the grid's metrics. 0 turns them off.",
    )  # fmt: skip
    rubrics: dict[JudgedKind, str] = Field(
        default_factory=dict,
        description="Benchmark kind → rubric id or template file, e.g. {harm: msb-harm, high_risk: "
        "high-risk-behaviour, rubric: rubric-grader}.",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="Judge temperature (0 as in the paper).")
    max_tokens: int = Field(512, ge=8, le=8192, description="Most tokens of a judge answer.")
    guided: bool = Field(True, description="Constrain the judge's output format with structured outputs.")
    concurrency: int = Field(16, ge=1, le=4096, description="Judge requests in flight per caller.")
    app_name: str = Field("judge_app", pattern=NAME_RE, description="Ray Serve application name (reused if running).")

    @model_validator(mode="after")
    def _one_backend(self) -> Judge:
        if self.members:
            if self.model is not None or self.url is not None:
                raise ValueError("a jury lists its judges in `members`: move `model` / `url` into a member")
            if len(self.members) < 2:
                raise ValueError("`members` is a jury of two or more judges; for one judge use `model` or `url`")
            names = [m.name for m in self.members]
            if len(set(names)) != len(names):
                raise ValueError(f"members: duplicate names {sorted({n for n in names if names.count(n) > 1})}")
            return self
        problems = self.backend_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def jurors(self) -> list[Backend]:
        """The judges that vote: the members of a jury, or the single judge."""
        return list(self.members) if self.members else [self]


class Guardrail(Backend):
    name: Name = Field(description="Name of the guardrail in results ('none' = the unguarded arm).")
    format: str = Field(
        "llama-guard",
        description=f"Prompt format and parser of the guard: {', '.join(GUARD_FORMATS)}, or a path to a guard file.",
    )
    mode: Literal["input", "output", "both"] = Field(
        "both", description="input: block flagged requests; output: replace flagged answers; both."
    )
    refusal: str = Field(
        "I can't help with that request. If this is a medical emergency, contact your local emergency services.",
        description="The answer a blocked request or a replaced answer gets.",
    )
    guided: bool = Field(True, description="Constrain the guard's output format with structured outputs.")
    on_error: Literal["pass", "block"] = Field(
        "pass", description="What a failed or unparsable guard call does (recorded either way)."
    )
    controversial: str | None = Field(
        None,
        description="qwen3guard: how a Controversial verdict counts: unsafe (blocks; the default) or safe (passes).",
    )
    threshold: float | None = Field(
        None, description="shieldgemma / granite-guardian: block when P(Yes) of the first answer token >= threshold "
        "(0 < t < 1; the server must return log-probabilities). Unset: the Yes/No text decides."
    )
    policies: list[str] | None = Field(
        None, description="shieldgemma: the policies to check, one guard call each (default: every policy it lists)."
    )
    risk: str | None = Field(None, description="granite-guardian: the risk the guard checks (default: harm).")

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        if v in GUARD_FORMATS or "/" in v or "\\" in v or v.endswith((".yaml", ".yml")):
            return v
        raise ValueError(f"unknown guard format {v!r}: choose {', '.join(GUARD_FORMATS[:-1])} or {GUARD_FORMATS[-1]}, "
                         "or give the path of a guard file (.yaml)")  # fmt: skip

    @field_validator("controversial")
    @classmethod
    def _controversial(cls, v: str | None) -> str | None:
        if v is None or v in CONTROVERSIAL:
            return v
        choices = "; ".join(f"{k}: {why}" for k, why in CONTROVERSIAL.items())
        raise ValueError(f"controversial must be unsafe or safe, got {as_text(v)!r} ({choices})")

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v < 1:
            raise ValueError(f"threshold is a probability of Yes strictly between 0 and 1 (e.g. 0.5), got {v}")
        return v

    @field_validator("policies")
    @classmethod
    def _policies(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("policies: list at least one policy, or leave it out to check every policy of the format")
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"policies: {sorted({p for p in v if v.count(p) > 1})} listed twice: list each once")
        return v

    @model_validator(mode="after")
    def _backend(self) -> Guardrail:
        problems = self.backend_problems(required=self.name != "none")
        if self.name == "none" and (self.model is not None or self.url is not None):
            problems = ["the guardrail named 'none' is the unguarded arm: it takes no `model` / `url`"]
        options = [k for k in ("controversial", "threshold", "policies", "risk") if getattr(self, k) is not None]
        if self.name == "none" and options:
            problems = [f"the guardrail named 'none' is the unguarded arm: remove {', '.join(options)}"]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def is_none(self) -> bool:
        return self.name == "none"


def guardrail_entries(v: Any) -> Any:
    """`guardrails: [none, {...}]`: the bare word none is the unguarded arm."""
    if not isinstance(v, list):
        return v
    out = []
    for g in v:
        if g is None or (isinstance(g, str) and g.strip().lower() == "none"):
            out.append({"name": "none"})
        elif isinstance(g, (str, int, float, bool)):
            raise ValueError(f"guardrail {as_text(g)!r}: a guardrail is `none` or a mapping {{name, model | url, "
                             "format, mode}")  # fmt: skip
        else:
            out.append(g)
    return out
