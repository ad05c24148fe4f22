"""Read a manifest file into a validated `Manifest`, reporting every problem at once with its field path.

Env references (${VAR}) stay unresolved in the manifest; `resolve_env` resolves one value at the point of use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evalsvc.errors import UserError
from evalsvc.manifest.schema import ENV_REF_RE, Manifest

MAX_MANIFEST_BYTES = 2_000_000


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
    return parse_manifest(text, source=str(p))


def parse_manifest(text: str, source: str = "<manifest>") -> Manifest:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{source}:{where} is not valid YAML ({getattr(e, 'problem', e)}); fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{source}: a manifest is a YAML mapping with keys name, models, benchmarks, strategies, output")
    return validate_manifest(data, source)


def validate_manifest(data: dict[str, Any], source: str = "<manifest>") -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as e:
        raise UserError(f"{source}: {e.error_count()} problem(s) in the manifest", format_errors(e)) from None


def format_errors(e: ValidationError) -> list[str]:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not _is_union_tag(x)) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key: remove it or check its spelling against `evalsvc validate --help`"
        elif err["type"] == "missing":
            msg = "required: add this field"
        lines.append(f"{loc}: {msg}")
    return list(dict.fromkeys(lines))


def _is_union_tag(x: Any) -> bool:
    # pydantic puts the union member's type name into the error location (e.g. 'str', 'CustomStrategy')
    return isinstance(x, str) and (x in ("str", "CustomStrategy") or x.startswith("function-"))


def resolve_env(value: str | None, field: str) -> str | None:
    """Resolve a ${VAR} reference from the environment at the point of use; plain values pass through."""
    if value is None or not ENV_REF_RE.match(value):
        return value
    var = value[2:-1]
    if var not in os.environ:
        raise UserError(f"{field}: environment variable {var} is not set; export it before running")
    return os.environ[var]
