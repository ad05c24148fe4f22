"""Redact anything that looks like a credential before run metadata is shown to a person.

Values under keys naming a key/secret/token/password are replaced, and so are values shaped like known credentials.
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"
ENV_REF_RE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
SECRET_KEY_RE = re.compile(r"key|secret|token|password|passwd|credential|auth", re.IGNORECASE)
SECRET_VALUE_RE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{8,}|(AKIA|ASIA)[A-Z0-9]{12,}|gh[pousr]_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|xox[abpr]-\S+)$"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
# token counts, tokenizers and content-hash keys are not secrets
COUNT_KEY_RE = re.compile(r"tokens|tokeniz|^(record|cache|sort|partition|content)_keys?$", re.IGNORECASE)
URL_USERINFO_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)


def redact(obj: Any) -> Any:
    """A copy of `obj` (JSON-like) with credential-looking values replaced by '<redacted>'."""
    if isinstance(obj, dict):
        return {k: (REDACTED if _secret_key(k) and not _harmless(v) else redact(v)) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        if SECRET_VALUE_RE.search(obj):
            return REDACTED
        return URL_USERINFO_RE.sub(lambda m: f"{m['scheme']}{REDACTED}@", obj)
    return obj


def _harmless(value: Any) -> bool:
    # nothing set, or an env reference such as ${JUDGE_API_KEY}: the name of a variable is not a secret
    return value in (None, "") or (isinstance(value, str) and ENV_REF_RE.fullmatch(value) is not None)


def _secret_key(key: object) -> bool:
    # "rubric_id", "max_tokens" are fine; "api_key", "secret_access_key", "auth_token" are not
    if not isinstance(key, str):
        return False
    return bool(SECRET_KEY_RE.search(key)) and not COUNT_KEY_RE.search(key)
