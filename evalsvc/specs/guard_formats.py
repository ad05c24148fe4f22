"""Guard formats: the prompt, categories, parser and guided-decoding regexes that make one versioned guardrail format.

Shipped formats live beside the judge rubrics (judges/guards/<id>.yaml, packaged as evalsvc/_judges/guards);
`load_guard_format` takes a format id or a path to a YAML file of the same shape.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evalsvc.errors import UserError
from evalsvc.specs.guard_parsers import Reading, Verdict, get_parser
from evalsvc.specs.rubric import GuidedSpec, check_known, fill, placeholders, read_spec_file, rubric_dir

Check = Literal["input", "output"]
# {policy}: the text of the one category a call asks about (per_category); {risk}: the risk the guardrail names
TEMPLATE_FIELDS = {"input": ("categories", "question", "policy", "risk"),
                   "output": ("categories", "question", "response", "policy", "risk")}  # fmt: skip
SUBJECT_FIELDS = ("policy", "risk")
# the guardrail options of the manifest, and what makes a format read them
OPTION_PARSERS = {"controversial": "qwen3guard", "threshold": "yes-no"}


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
    names: dict[str, str] = field(default_factory=dict)  # category code -> short name in records and metrics
    per_category: bool = False  # one call per category (policy), each asking about that one alone
    chat_template_kwargs: dict = field(default_factory=dict)  # sent with each call; {policy} / {risk} filled in

    @property
    def label(self) -> str:
        return f"{self.id}@{self.version}"

    def messages(
        self, check: Check, question: str, response: str | None = None, subject: str | None = None
    ) -> list[dict]:
        """The guard's chat messages for the input check (request) or the output check (request + answer).

        `subject` is the category (per_category formats) or the risk one call asks about."""
        values = self._values(subject)
        system = [{"role": "system", "content": fill(self.system, values)}] if self.system else []
        if self.send == "conversation":
            turns = [{"role": "user", "content": question or ""}]
            return system + turns + ([{"role": "assistant", "content": response or ""}] if check == "output" else [])
        values.update(categories=self.category_list(), question=question or "", response=response or "")
        return system + [{"role": "user", "content": fill(self.templates[check], values)}]

    def request_fields(self, subject: str | None = None) -> dict:
        """Body fields besides the messages: the chat template's arguments (a guard whose template holds the prompt)."""
        if not self.chat_template_kwargs:
            return {}
        return {"chat_template_kwargs": _fill_tree(self.chat_template_kwargs, self._values(subject))}

    def _values(self, subject: str | None) -> dict[str, str]:
        return {"policy": self.categories.get(subject or "", ""), "risk": subject or ""}

    def category_list(self) -> str:
        return "\n".join(f"{code}: {text}" for code, text in self.categories.items())

    def category_name(self, code: str) -> str:
        return self.names.get(code, code)

    def uses(self, placeholder: str) -> bool:
        texts = [*self.templates.values(), self.system, *_strings(self.chat_template_kwargs)]
        return any(placeholder in placeholders(t) for t in texts)

    def option_names(self) -> set[str]:
        """The guardrail options of the manifest this format reads."""
        found = {name for name, parser in OPTION_PARSERS.items() if parser == self.parser}
        return found | ({"policies"} if self.per_category else set()) | ({"risk"} if self.uses("risk") else set())

    def parse(
        self, raw: str, check: Check = "input", controversial: str = "unsafe", subject: str | None = None
    ) -> Verdict:
        return get_parser(self.parser)(raw, Reading(self.categories, check, controversial, subject))

    def digest(self) -> str:
        """A short content hash of everything that changes what the guard is asked or how it is read."""
        body: list = [self.parser, self.send, self.categories, self.templates, self.system, self.guided]
        body.append(self.max_tokens)
        extra = {"names": self.names, "per_category": self.per_category, "kwargs": self.chat_template_kwargs}
        if any(extra.values()):  # formats without these keep the digests (and record keys) they always had
            body.append(extra)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _strings(tree: object) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    if isinstance(tree, dict):
        return [s for v in tree.values() for s in _strings(v)]
    if isinstance(tree, list):
        return [s for v in tree for s in _strings(v)]
    return []


def _fill_tree(tree: object, values: dict[str, str]) -> object:
    if isinstance(tree, str):
        return fill(tree, values)
    if isinstance(tree, dict):
        return {k: _fill_tree(v, values) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_fill_tree(v, values) for v in tree]
    return tree


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
    categories: dict[str, str] = Field(
        default_factory=dict, description="Category code or name -> what it covers (the policies or risks a guard "
        "may name; empty for a guard that names none)."
    )
    names: dict[str, str] = Field(
        default_factory=dict, description="Category code -> the short name records and metrics use (default: the code)."
    )
    per_category: bool = Field(False, description="Ask about one category per call ({policy}), one call each.")
    system: str = Field("", description="System message of the guard prompt (none if empty); may use {policy}, {risk}.")
    input_template: str | None = Field(None, description="User message of the input check: {categories}, {question}.")
    output_template: str | None = Field(
        None, description="User message of the output check: {categories}, {question}, {response}."
    )
    chat_template_kwargs: dict = Field(
        default_factory=dict, description="Arguments for the guard's own chat template, sent with each call; string "
        "values may use {policy} and {risk}."
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

    @field_validator("names")
    @classmethod
    def _names(cls, names: dict[str, str]) -> dict[str, str]:
        if bad := [n for n in names.values() if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]:
            raise ValueError(f"names must be lower_snake_case, got {bad}")
        return names

    @model_validator(mode="after")
    def _templates(self) -> GuardFile:
        if self.send == "prompt":
            for check, template in (("input", self.input_template), ("output", self.output_template)):
                if template is None:
                    raise ValueError(f"send: prompt needs {check}_template")
                used, allowed = placeholders(template), TEMPLATE_FIELDS[check]
                if "question" not in used or (check == "output" and "response" not in used):
                    required = ("question", "response")[: 1 + (check == "output")]
                    raise ValueError(f"{check}_template must contain " + ", ".join("{" + p + "}" for p in required))
                if unknown := sorted(used - set(allowed)):
                    raise ValueError(f"{check}_template: unknown placeholders {unknown}; use {sorted(allowed)}")
        used = placeholders(self.system) | _kwarg_fields(self.chat_template_kwargs)
        if unknown := sorted(used - set(SUBJECT_FIELDS)):
            raise ValueError(f"system / chat_template_kwargs: unknown placeholders {unknown}; use {{policy}} or "
                             "{risk}")  # fmt: skip
        return self._categories_fit()

    def _categories_fit(self) -> GuardFile:
        fmt = self.to_format("")
        if unknown := sorted(set(self.names) - set(self.categories)):
            raise ValueError(f"names: {unknown} are not among the categories {list(self.categories)}")
        if fmt.per_category != fmt.uses("policy"):
            raise ValueError("per_category: true asks one call per category and needs a {policy} placeholder (and "
                             "{policy} needs per_category: true)")  # fmt: skip
        if not self.categories and (fmt.per_category or fmt.uses("categories") or fmt.uses("risk")):
            raise ValueError("categories: empty, but the format lists them ({categories}, {policy} or {risk})")
        return self

    def to_format(self, source: str) -> GuardFormat:
        templates = {"input": self.input_template, "output": self.output_template} if self.send == "prompt" else {}
        guided = {check: spec.as_dict() for check, spec in self.guided.items()}
        return GuardFormat(
            self.id, self.version, self.parser, self.send, dict(self.categories), templates,  # type: ignore[arg-type]
            self.system, guided, self.max_tokens, self.description, source, dict(self.names), self.per_category,
            dict(self.chat_template_kwargs),
        )  # fmt: skip


def _kwarg_fields(tree: dict) -> set[str]:
    return {p for s in _strings(tree) for p in placeholders(s)}


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
