"""Read a manifest file into a validated `Manifest`, reporting every problem at once with its field path.

Env references (${VAR}) stay unresolved in the manifest; `resolve_env` resolves one value at the point of use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evalsvc.errors import UserError
from evalsvc.manifest.schema import BUILTIN_STRATEGIES, NAME_RE, Manifest

MAX_MANIFEST_BYTES = 2_000_000
NAME_RULE = "use 1-63 lower-case letters, digits, '_', '.', '-' (start with a letter or digit)"
STRATEGY_KEYS = "{name, system, user_template, answer_format}"


def load_manifest(path: str | Path) -> Manifest:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such manifest file (give the path to a .yaml manifest)")
    if p.stat().st_size > MAX_MANIFEST_BYTES:
        raise UserError(f"{p}: manifest is larger than {MAX_MANIFEST_BYTES} bytes; a manifest lists models and benchmarks, not data")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start}); save the manifest as UTF-8") from None
    return parse_manifest(text, source=str(p), base=p.parent)


def parse_manifest(text: str, source: str = "<manifest>", base: Path | None = None) -> Manifest:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # yaml.SafeLoader plus a duplicate-key check
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{source}:{where} is not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: a manifest is a YAML mapping with keys name, models, benchmarks, strategies, output")
    if base is not None:
        anchor_inputs(data, base)
    return validate_manifest(data, source)


def anchor_inputs(data: dict, base: Path) -> None:
    """Relative input files (custom benchmarks, LoRA adapters, the calibration slice, guard files) are relative to
    the manifest's folder, so a manifest and its data travel together; outputs (output.uri) stay relative to where
    evalsvc runs."""
    spots = [(b, "path") for b in _entries(data, "benchmarks")] + [(m, "adapter") for m in _entries(data, "models")]
    judge = data.get("judge")
    if isinstance(judge, dict) and isinstance(judge.get("calibration"), dict):
        spots.append((judge["calibration"], "path"))
    for g in _entries(data, "guardrails"):  # a guard file; a built-in format id is not a path
        if isinstance(g.get("format"), str) and g["format"].endswith((".yaml", ".yml")):
            spots.append((g, "format"))
    for entry, key in spots:
        v = entry.get(key)
        if isinstance(v, str) and v.strip() and "://" not in v and not Path(v).expanduser().is_absolute():
            entry[key] = str((base / v).resolve())


def _entries(data: dict, key: str) -> list[dict]:
    v = data.get(key)
    return [e for e in v if isinstance(e, dict)] if isinstance(v, list) else []


def validate_manifest(data: dict[str, Any], source: str = "<manifest>") -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        problems = format_errors(e)
        raise UserError(f"{source}: {len(problems)} problem(s) in the manifest", problems) from None


def format_errors(e: ValidationError) -> list[str]:
    lines = []
    for err in e.errors():
        if _other_strategy_form(err):
            continue
        loc = ".".join(str(x) for x in err["loc"] if not _not_a_field(x))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling against `evalsvc validate --help`"
        elif err["type"] == "missing":
            msg = "required: add this field"
        elif err["type"] == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern") == NAME_RE:
            msg = f"{err['input']!r} is not a valid name: {NAME_RULE}"
        elif "str" in err["loc"]:
            msg = f"a strategy is a built-in name ({', '.join(BUILTIN_STRATEGIES)}) or a mapping {STRATEGY_KEYS}"
        if not loc and err["type"] == "value_error":
            lines.extend(msg.splitlines())  # cross-field checks: each line names its own field path
        else:
            lines.append(f"{loc or '(top level)'}: {msg}")
    return list(dict.fromkeys(lines))


def _other_strategy_form(err: Any) -> bool:
    # A strategy is a name (str) or a mapping (CustomStrategy): pydantic reports both union branches; keep the one
    # matching what the user wrote (a mapping's errors come from CustomStrategy, anything else's from str).
    if "str" in err["loc"]:
        return isinstance(err["input"], dict)
    return bool(err["loc"]) and err["loc"][-1] == "CustomStrategy" and err["type"] == "model_type"


def _not_a_field(x: Any) -> bool:
    # pydantic puts the union member's type name into the error location (e.g. 'str', 'CustomStrategy')
    # ... and '[key]' after a mapping key that failed validation (the key itself is already in the path)
    return isinstance(x, str) and (x in ("str", "CustomStrategy", "[key]") or x.startswith("function-"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (plain PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}: keep only one", key_node.start_mark
                    )
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)
