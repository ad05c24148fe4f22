"""Judge rubrics: the prompt, the parser name and the guided-decoding spec that make one versioned judge.

`load_rubric` takes a rubric id (a YAML file in the rubric folder) or a file path (a YAML rubric, or the upstream
MedSafetyBench RUBRIC.txt, which becomes the paper-exact template `msb-harm-upstream`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evalsvc.errors import UserError
from evalsvc.specs.judge_parsers import get_parser
from evalsvc.store.row import JudgedKind

DEFAULT_RUBRICS = {"harm": "msb-harm", "high_risk": "high-risk-behaviour", "rubric": "rubric-grader"}
REQUIRED_PLACEHOLDERS = ("question", "response")
# What the judge stage fills in per kind: a rubric (HealthBench-format) grader sees one criterion at a time.
REQUIRED_BY_KIND = {"harm": REQUIRED_PLACEHOLDERS, "high_risk": REQUIRED_PLACEHOLDERS,
                    "rubric": ("conversation", "response", "criterion")}  # fmt: skip
PROVIDED_BY_KIND = {**REQUIRED_BY_KIND, "rubric": ("question", "conversation", "response", "criterion", "points",
                                                   "polarity")}  # fmt: skip
# `{name}` is a placeholder; `{{` and `}}` are literal braces. One pass, so braces in filled-in text stay text.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TRUE = {"true", "yes", "y", "1", "control", "benign"}
_FALSE = {"false", "no", "n", "0", ""}


@dataclass(frozen=True)
class Switch:
    """A placeholder whose text is chosen by the value of another field (e.g. `control` -> a note to the judge)."""

    field: str
    cases: dict[str, str]
    default: str


@dataclass(frozen=True)
class Rubric:
    id: str
    version: str
    kind: str  # harm | high_risk | rubric
    system: str
    user_template: str
    parser: str
    guided: dict | None = None  # {"regex": pattern} or {"json": schema}, handed to the engine's structured outputs
    description: str = ""
    defaults: dict[str, str] = field(default_factory=dict)  # text for a placeholder the caller leaves out or None
    switches: dict[str, Switch] = field(default_factory=dict)
    source: str = ""  # where it was loaded from
    send: str = "prompt"  # prompt: the filled template; conversation: the raw turns (a guard model judging)

    def render(self, question: str, response: str, **fields: object) -> list[dict]:
        """The judge's chat messages for one (request, response); extra fields fill the template's placeholders."""
        if self.send == "conversation":  # the judge's own chat template holds its instructions
            turns = [{"role": "user", "content": question or ""}, {"role": "assistant", "content": response or ""}]
            return [{"role": "system", "content": self.system}, *turns] if self.system else turns
        values = {k: str(v) for k, v in self.defaults.items()}
        # None or "" means "not known for this item": the rubric's default text stands in.
        values.update({k: str(v) for k, v in fields.items() if v is not None and str(v) != ""})
        for name, switch in self.switches.items():
            values[name] = switch.cases.get(_case_key(fields.get(switch.field)), switch.default)
        values["question"], values["response"] = question or "", response or ""
        user = fill(self.user_template, values)
        messages = [{"role": "user", "content": user}]
        return [{"role": "system", "content": self.system}, *messages] if self.system else messages

    def digest(self) -> str:
        """A short content hash of everything that changes the judge's prompt or reading, for record keys."""
        body = json.dumps([self.system, self.user_template, self.parser, self.guided, self.defaults,
                           {k: [s.field, s.cases, s.default] for k, s in self.switches.items()}]
                          + ([self.send] if self.send != "prompt" else []), sort_keys=True)  # fmt: skip
        return hashlib.sha256(body.encode()).hexdigest()[:16]


def _case_key(value: object) -> str:
    text = str(value).strip().lower() if value is not None else ""
    return "true" if text in _TRUE else "false" if text in _FALSE else text


def fill(template: str, values: dict[str, str], keep_unknown: bool = False) -> str:
    """Substitute `{name}` in one pass; with keep_unknown, unknown placeholders and `{{`/`}}` stay as written."""

    def one(m: re.Match) -> str:
        name = m.group(1)
        if name is None:
            return m.group(0) if keep_unknown else m.group(0)[0]
        if name in values:
            value = values[name]
            # Text inserted into a template that will be filled again must not grow new placeholders.
            return value.replace("{", "{{").replace("}", "}}") if keep_unknown else value
        if keep_unknown:
            return m.group(0)
        raise KeyError(name)

    return _PLACEHOLDER.sub(one, template)


def placeholders(template: str) -> set[str]:
    return {m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1)}


# --- YAML rubric files ---------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GuidedSpec(_Strict):
    regex: str | None = Field(None, description="A regex the judge's whole answer must match (structured outputs).")
    json_schema: dict | None = Field(None, alias="json", description="A JSON schema the answer must satisfy.")

    @model_validator(mode="after")
    def _exactly_one(self) -> GuidedSpec:
        if (self.regex is None) == (self.json_schema is None):
            raise ValueError("give exactly one of 'regex' or 'json'")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as e:  # not a ValueError: pydantic would let it escape as a traceback
                raise ValueError(f"regex does not compile: {e}") from None
        return self

    def as_dict(self) -> dict:
        return {"regex": self.regex} if self.regex is not None else {"json": self.json_schema}


class SwitchSpec(_Strict):
    field: str = Field(description="The item field whose value picks the text (e.g. control).")
    cases: dict[str, str] = Field(description="Field value (true/false for flags) -> text.")
    default: str = Field(description="Text when the value matches no case.")


class RubricFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Rubric id, as cited in manifests and records.")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="Semantic version; bump it on any prompt change.")
    kind: JudgedKind = Field(
        description="The benchmark kind it judges (rubric: one criterion of a HealthBench-format example per call)."
    )
    description: str = Field(description="One paragraph: what the judge decides and how to read its score.")
    system: str = Field(description="The judge's system prompt.")
    send: Literal["prompt", "conversation"] = Field(
        "prompt", description="prompt: fill user_template; conversation: send the request and the answer as raw turns "
        "(a guard model whose own chat template holds its instructions)."
    )
    user_template: str | None = Field(
        None, description="The judge's user message (send: prompt); {question} and {response} are required "
        "({conversation}, {response} and {criterion} for kind rubric, which may also use {points} and {polarity})."
    )
    output_format: str = Field(description="The answer format the template asks for (documentation).")
    parser: str = Field(description="Name of the strict parser in evalsvc.specs.judge_parsers.")
    guided: GuidedSpec | None = Field(None, description="Guided decoding spec, or null for none.")
    defaults: dict[str, str] = Field(default_factory=dict, description="Text for placeholders the caller omits.")
    switches: dict[str, SwitchSpec] = Field(default_factory=dict, description="Placeholders chosen by a field.")

    @field_validator("parser")
    @classmethod
    def _known_parser(cls, name: str) -> str:
        try:
            get_parser(name)
        except UserError as e:  # pydantic reports ValueErrors with the field path
            raise ValueError(e.message) from None
        return name

    @model_validator(mode="after")
    def _placeholders_covered(self) -> RubricFile:
        if self.send == "conversation" and self.kind == "rubric":
            raise ValueError("kind rubric grades one criterion per call: use send: prompt with a user_template")
        if self.send == "conversation":
            if self.user_template is not None or self.defaults or self.switches:
                raise ValueError("send: conversation sends the raw turns: remove user_template, defaults and switches")
            return self
        if self.user_template is None:
            raise ValueError("send: prompt needs user_template")
        used = placeholders(self.user_template)
        if missing := [p for p in REQUIRED_BY_KIND[self.kind] if p not in used]:
            raise ValueError(f"user_template must contain {', '.join('{' + p + '}' for p in missing)}")
        if unknown := sorted(used - set(PROVIDED_BY_KIND[self.kind]) - set(self.defaults) - set(self.switches)):
            raise ValueError(f"placeholders {unknown} need an entry in 'defaults' or 'switches'")
        return self

    def to_rubric(self, source: str) -> Rubric:
        switches = {k: Switch(s.field, dict(s.cases), s.default) for k, s in self.switches.items()}
        guided = self.guided.as_dict() if self.guided else None
        return Rubric(self.id, self.version, self.kind, self.system, self.user_template or "", self.parser, guided,
                      self.description, dict(self.defaults), switches, source, self.send)


def _load_yaml_rubric(path: Path) -> Rubric:
    return read_spec_file(path, RubricFile, "rubric", "id, version, kind").to_rubric(str(path))


def check_known(ref: str, names: list[str], what: str) -> None:
    """An id among the shipped files, or a UserError suggesting the closest one."""
    if ref not in names:
        close = difflib.get_close_matches(ref, names, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"unknown {what} '{ref}': {hint}available: {', '.join(names) or '(none)'}")


def read_spec_file(path: Path, schema: type[BaseModel], what: str, keys: str) -> Any:
    """A versioned YAML spec (a rubric, a guard format) validated by `schema`; every problem named with its field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise UserError(f"{what} file {path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise UserError(f"{what} file {path}: expected a mapping with {keys}, … at the top")
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        problems = [f"{path}: {'.'.join(map(str, err['loc'])) or '(top)'}: {err['msg']}" for err in e.errors()]
        raise UserError(f"{what} file {path} is invalid; fix the fields below", problems) from e


# --- the upstream MedSafetyBench rubric notes ----------------------------------------------------------------

UPSTREAM_ID = "msb-harm-upstream"
UPSTREAM_SYSTEM = "You are a helpful assistant."  # the paper's judge system prompt
_UPSTREAM_MARK = "BEGIN EVAL PROMPT TEMPLATE"
_UPSTREAM_BLOCKS = {
    "template": r"^-+ BEGIN EVAL PROMPT TEMPLATE[^\n]*-+\n(.*?)\n-+ END EVAL PROMPT TEMPLATE -+$",
    "rubric": r"^-+ BEGIN \{rubric\}[^\n]*-+\n(.*?)\n-+ END \{rubric\} -+$",
    "usage_policy": r"^-+ BEGIN \{usage_policy\}[^\n]*-+\n(.*?)\n-+ END usage_policy_med_harm -+$",
}


def _load_upstream(path: Path, text: str) -> Rubric:
    """The paper-exact judge prompt: the EVAL PROMPT TEMPLATE with the medical usage policy and rubric filled in."""
    blocks = {}
    for name, pattern in _UPSTREAM_BLOCKS.items():
        m = re.search(pattern, text, re.DOTALL | re.MULTILINE)
        if m is None:
            raise UserError(f"{path} looks like the MedSafetyBench RUBRIC.txt but its '{name}' block is missing")
        blocks[name] = m.group(1)
    commit = re.search(r"@ commit ([0-9a-f]{7,40})", text)
    if commit is None:
        raise UserError(f"{path}: no '@ commit <sha>' line naming the upstream version")
    template = blocks["template"].replace("{", "{{").replace("}", "}}")
    template = re.sub(r"\{\{(question|response|usage_policy|rubric)\}\}", r"{\1}", template)
    template = fill(template, {"usage_policy": blocks["usage_policy"], "rubric": blocks["rubric"]}, keep_unknown=True)
    return Rubric(
        id=UPSTREAM_ID,
        version=commit.group(1)[:7],
        kind="harm",
        system=UPSTREAM_SYSTEM,
        user_template=template,
        parser="msb-harm",
        guided=None,
        description="MedSafetyBench's own judge prompt (1-5 harmfulness, lower is safer), as in the paper's code.",
        source=str(path),
    )


# --- lookup ----------------------------------------------------------------------------------------------------


def rubric_dir() -> Path:
    """Rubrics ship as package data in a wheel (evalsvc/_judges); a source checkout reads <repo>/judges."""
    packaged = Path(__file__).parents[1] / "_judges"
    return packaged if packaged.is_dir() else Path(__file__).parents[2] / "judges"


def available_rubrics() -> list[str]:
    folder = rubric_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def default_rubric(kind: str) -> str:
    if kind not in DEFAULT_RUBRICS:
        raise UserError(f"no judge rubric for benchmark kind '{kind}': judged kinds are {', '.join(DEFAULT_RUBRICS)}")
    return DEFAULT_RUBRICS[kind]


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.endswith((".yaml", ".yml", ".txt")) or Path(ref).is_file()


def load_rubric(ref: str) -> Rubric:
    """A rubric by id (e.g. 'msb-harm') or by file path (a YAML rubric or the upstream RUBRIC.txt)."""
    if _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise UserError(f"judge rubric file '{ref}' not found: give an existing path or a rubric id")
        text = path.read_text(encoding="utf-8")
        return _load_upstream(path, text) if _UPSTREAM_MARK in text else _load_yaml_rubric(path)
    check_known(ref, available_rubrics(), "rubric")
    rubric = _load_yaml_rubric(rubric_dir() / f"{ref}.yaml")
    if rubric.id != ref:
        raise UserError(f"rubric file {rubric.source} declares id '{rubric.id}': rename the file or the id to match")
    return rubric
