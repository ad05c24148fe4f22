"""A quick pre-flight of an OpenAI-compatible base URL: does anything answer there before a run relies on it?

One GET of <url>/models with a short timeout; any answer counts (a 401 or 501 still proves a server is up) except
a gateway's 502/503/504, which says the service behind it is not ready.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from evalsvc.errors import UserError

PROBE_TIMEOUT_S = 5.0
NOT_READY = frozenset({502, 503, 504})


def check_answers(url: str, field: str, api_key: str | None = None, fix: str = "",
                  timeout_s: float = PROBE_TIMEOUT_S) -> int:  # fmt: skip
    """The HTTP status `url` answered with; UserError naming `field` when nothing answers or it is not ready."""
    req = urllib.request.Request(url.rstrip("/") + "/models", method="GET")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status
    except urllib.error.HTTPError as e:  # something answered: only a gateway's "no backend" means not ready
        if e.code not in NOT_READY:
            return e.code
        why = f"answers HTTP {e.code} ({e.reason})"
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", e)
        why = f"does not answer ({type(reason).__name__}: {reason})"
    raise UserError(f"{field}: {url} {why}; {fix or 'start the server or fix the URL'}, then run again")
