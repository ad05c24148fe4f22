"""Validate custom resources against a CRD's openAPIV3Schema the way the API server does, with jsonschema.

Handles Kubernetes' schema extensions: int-or-string, nullable, list-type set/map uniqueness, int32/int64 ranges,
and structural pruning as strict field validation (an unknown field is an error unless preserve-unknown-fields).
CEL rules (x-kubernetes-validations) are not evaluated: `cel_rule_paths` lists them so tests can avoid them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft7Validator, FormatChecker, ValidationError

INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for fmt, (lo, hi) in INT_RANGES.items():
        checker.checks(fmt)(lambda v, lo=lo, hi=hi: not isinstance(v, int) or isinstance(v, bool) or lo <= v <= hi)
    return checker


def _type(validator, types, instance, schema) -> Iterator[ValidationError]:
    if instance is None and schema.get("nullable"):
        return
    yield from Draft7Validator.VALIDATORS["type"](validator, types, instance, schema)


def _int_or_string(validator, enabled, instance, schema) -> Iterator[ValidationError]:
    if enabled and (isinstance(instance, bool) or not isinstance(instance, (int, str))):
        yield ValidationError(f"{instance!r} is neither an integer nor a string (x-kubernetes-int-or-string)")


def _list_type(validator, list_type, instance, schema) -> Iterator[ValidationError]:
    if not isinstance(instance, list) or list_type == "atomic":
        return
    if list_type == "set":
        keys = [yaml.safe_dump(item, sort_keys=True) for item in instance]
        label = "items"
    elif list_type == "map":
        names = schema.get("x-kubernetes-list-map-keys", [])
        keys = [tuple(item.get(n) for n in names) if isinstance(item, dict) else item for item in instance]
        label = f"map keys {names}"
    else:
        yield ValidationError(f"unknown x-kubernetes-list-type {list_type!r}")
        return
    dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dupes:
        yield ValidationError(f"duplicate {label} in a list-type={list_type} list: {', '.join(dupes)}")


K8sValidator = jsonschema.validators.extend(
    Draft7Validator,
    {"type": _type, "x-kubernetes-int-or-string": _int_or_string, "x-kubernetes-list-type": _list_type},
)


def close_objects(schema: Any) -> Any:
    """Copy of `schema` where every object with declared properties rejects unknown fields."""
    if isinstance(schema, list):
        return [close_objects(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close_objects(v) for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        out["properties"] = {name: close_objects(sub) for name, sub in schema["properties"].items()}
        open_ended = "additionalProperties" in schema or schema.get("x-kubernetes-preserve-unknown-fields")
        if not open_ended:
            out["additionalProperties"] = False
    return out


@cache
def load_crd(crd_path: Path) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~1 MB each
    return yaml.load(crd_path.read_text(encoding="utf-8"), Loader=loader)


@cache
def crd_schema(crd_path: Path, version: str) -> dict:
    crd = load_crd(crd_path)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            return close_objects(copy.deepcopy(v["schema"]["openAPIV3Schema"]))
    raise KeyError(f"{crd_path.name}: no version {version!r}")


def crd_kind(crd_path: Path) -> tuple[str, str]:
    crd = load_crd(crd_path)
    return crd["spec"]["group"], crd["spec"]["names"]["kind"]


def errors(doc: dict, crd_path: Path) -> list[str]:
    """Every schema violation of `doc` as 'path: message' (empty when valid)."""
    version = doc.get("apiVersion", "").rpartition("/")[2]
    validator = K8sValidator(crd_schema(crd_path, version), format_checker=_format_checker())
    found = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def cel_rule_paths(crd_path: Path, version: str) -> list[tuple[str, ...]]:
    """Field paths (list items as '[]') that carry CEL rules this validator does not evaluate."""
    out: list[tuple[str, ...]] = []

    def walk(s: dict, path: tuple[str, ...]) -> None:
        if s.get("x-kubernetes-validations"):
            out.append(path)
        for name, sub in s.get("properties", {}).items():
            walk(sub, (*path, name))
        if isinstance(s.get("items"), dict):
            walk(s["items"], (*path, "[]"))
        if isinstance(s.get("additionalProperties"), dict):
            walk(s["additionalProperties"], (*path, "*"))

    walk(crd_schema(crd_path, version), ())
    return out
