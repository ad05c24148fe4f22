"""Env references (`${VAR}`): how a manifest names a secret without holding it, resolved only at the point of use.

The bottom floor of the package: the manifest validates the form, the store and engines resolve the value.
"""

from __future__ import annotations

import os
import re

from evalsvc.errors import UserError

ENV_REF_RE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def resolve_env(value: str | None, field: str) -> str | None:
    """Resolve a ${VAR} reference from the environment at the point of use; plain values pass through."""
    if value is None or not ENV_REF_RE.match(value):
        return value
    var = value[2:-1]
    if var not in os.environ:
        raise UserError(f"{field}: environment variable {var} is not set; export it before running")
    return os.environ[var]
