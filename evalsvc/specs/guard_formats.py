"""Guard formats: the prompt, categories, parser and guided-decoding regexes that make one versioned guardrail format.

Shipped formats live beside the judge rubrics (judges/guards/<id>.yaml, packaged as evalsvc/_judges/guards);
`load_guard_format` takes a format id or a path to a YAML file of the same shape.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalsvc.errors import UserError
from evalsvc.specs.guard_parsers import Verdict, get_parser
from evalsvc.specs.rubric import GuidedSpec, check_known, fill, placeholders, read_spec_file, rubric_dir

Check = Literal["input", "output"]
TEMPLATE_FIELDS = {"input": ("categories", "question"), "output": ("categories", "question", "response")}


@dataclass(frozen=True)
class GuardFormat:
    id: str
    version: str
    parser: str
    send: str  # prompt: our template as one user message; conversation: the raw turns (the guard's own template)
    categories: dict[str, str]
    templates: dict[str, str] = field(default_factory=dict)  # check -> user template (send: prompt)
    system: str = ""
    guided: dict[str, dict] = field(default_factory=dict)  # check -> {"regex": ...}
    max_tokens: int = 32
    description: str = ""
    source: str = ""

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    def messages(self, check: Check, question: str, response: str | None = None) -> list[dict]:
        """The guard's chat messages for the input check (request) or the output check (request + answer)."""
        if self.send == "conversation":
            turns = [{"role": "user", "content": question or ""}]
            return turns + ([{"role": "assistant", "content": response or ""}] if check == "output" else [])
        values = {"categories": self.category_list(), "question": question or "", "response": response or ""}
        user = {"role": "user", "content": fill(self.templates[check], values)}
        return [{"role": "system", "content": self.system}, user] if self.system else [user]

    def category_list(self) -> str:
        return "\n".join(f"{code}: {text}" for code, text in self.categories.items())

    def parse(self, raw: str) -> Verdict:
        return get_parser(self.parser)(raw, self.categories)

    def digest(self) -> str:
        """A short content hash of everything that changes what the guard is asked or how it is read."""
        body = [self.parser, self.send, self.categories, self.templates, self.system, self.guided, self.max_tokens]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuardFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Format id, as cited in manifests and records.")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Semantic version; bump it on any prompt change.")
    description: str = Field(description="One paragraph: what the guard decides and how to read its answer.")
    parser: str = Field(description="Name of the strict parser in evalsvc.specs.guard_parsers.")
    send: Literal["prompt", "conversation"] = Field(
        "prompt", description="prompt: render the templates; conversation: send the raw turns (a guard checkpoint "
        "whose own chat template holds the policy)."
    )
    categories: dict[str, str] = Field(min_length=1, description="Category code or name -> what it covers.")
    system: str = Field("", description="System message of the guard prompt (none if empty).")
    input_template: str | None = Field(None, description="User message of the input check: {categories}, {question}.")
    output_template: str | None = Field(
        None, description="User message of the output check: {categories}, {question}, {response}."
    )
    output_format: str = Field(description="The answer format the templates ask for (documentation).")
    max_tokens: int = Field(32, ge=1, le=1024, description="Most tokens of a guard answer.")
    guided: dict[Check, GuidedSpec] = Field(default_factory=dict, description="Guided decoding per check.")

    @field_validator("parser")
    @classmethod
    def _known_parser(cls, name: str) -> str:
        try:
            get_parser(name)
        except UserError as e:
            raise ValueError(e.message) from None
        return name

    @model_validator(mode="after")
    def _templates(self) -> GuardFile:
        if self.send == "conversation":
            return self
        for check, template in (("input", self.input_template), ("output", self.output_template)):
            if template is None:
                raise ValueError(f"send: prompt needs {check}_template")
            used, allowed = placeholders(template), TEMPLATE_FIELDS[check]
            if "question" not in used or (check == "output" and "response" not in used):
                raise ValueError(f"{check}_template must contain " + ", ".join("{" + p + "}" for p in allowed[1:]))
            if unknown := sorted(used - set(allowed)):
                raise ValueError(f"{check}_template: unknown placeholders {unknown}; use {sorted(allowed)}")
        return self

    def to_format(self, source: str) -> GuardFormat:
        templates = {"input": self.input_template, "output": self.output_template} if self.send == "prompt" else {}
        guided = {check: spec.as_dict() for check, spec in self.guided.items()}
        return GuardFormat(self.id, self.version, self.parser, self.send, dict(self.categories),
                           templates, self.system, guided, self.max_tokens, self.description, source)  # type: ignore[arg-type]


def guard_dir() -> Path:
    return rubric_dir() / "guards"


def available_formats() -> list[str]:
    folder = guard_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml"))


def load_guard_format(ref: str) -> GuardFormat:
    """A guard format by id (e.g. 'llama-guard') or by the path of a YAML guard file."""
    if looks_like_path(ref) or Path(ref).is_file():
        path = Path(ref).expanduser()
        if not path.is_file():
            raise UserError(f"guard format file '{ref}' not found: give an existing path or a format id")
        return _load(path)
    check_known(ref, available_formats(), "guard format")
    fmt = _load(guard_dir() / f"{ref}.yaml")
    if fmt.id != ref:
        raise UserError(f"guard file {fmt.source} declares id '{fmt.id}': rename the file or the id to match")
    return fmt


def _load(path: Path) -> GuardFormat:
    return read_spec_file(path, GuardFile, "guard", "id, version, parser").to_format(str(path))
