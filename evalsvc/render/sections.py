"""HTML fragments of the report that show record text and run metadata: the sample browser and the run panel.

Everything from records or run.json is HTML-escaped; metadata is redacted before it is shown.
"""

from __future__ import annotations

import json
from html import escape

from evalsvc.redact import redact

MAX_TEXT = 6000  # characters of one prompt/response shown in the sample browser
FACT_KEYS = ("versions", "judge", "sampling", "engines")


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def metadata_html(meta: dict | None) -> str:
    """Key facts (versions, judge, sampling, engines) as tables, then the whole redacted run.json."""
    if not meta:
        return _empty("This run has no run.json.")
    safe = redact(meta)
    facts = []
    for key in FACT_KEYS:
        if isinstance(safe.get(key), dict) and safe[key]:
            rows = "".join(
                f"<tr><td>{escape(k)}</td><td>{escape(_short(v))}</td></tr>" for k, v in _flatten(safe[key])[:40]
            )
            facts.append(f'<div class="card"><h3 class="fact">{escape(key)}</h3><table>{rows}</table></div>')
    grid = f'<div class="grid facts" id="run-facts">{"".join(facts)}</div>' if facts else ""
    return grid + f"<details><summary>run.json</summary>{_raw_json(safe)}</details>"


def _flatten(obj, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(obj, dict) and obj:
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), obj)]


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return _clip(text, 200)


def samples_html(samples: dict) -> str:
    if not samples:
        return _empty("No samples (run with --samples N to include some).")
    out = []
    for (model, bench, strategy), records in samples.items():
        inner = "".join(_sample(r) for r in records) or _empty("no records")
        out.append(
            f"<details{' open' if not out else ''}><summary>{escape(model)} · {escape(bench)} · {escape(strategy)} "
            f'<span class="badge">{len(records)}</span></summary>{inner}</details>'
        )
    return '<div id="sample-browser">' + "".join(out) + "</div>"


def _sample(r: dict) -> str:
    badges = [f'<span class="badge">{escape(str(r.get("item_id")))} #{r.get("sample_index")}</span>']
    if r.get("error"):
        badges.append(f'<span class="badge bad">error: {escape(_clip(str(r["error"]), 200))}</span>')
    elif not r.get("parse_ok"):
        badges.append('<span class="badge warn">judge answer not parsed</span>')
    badges += [f'<span class="badge">{escape(v)}</span>' for v in _verdict(r)]
    badges += _guard_badges(r)
    cats = [f"{k}={r[k]}" for k in ("principle", "aspect", "category") if r.get(k)]
    if cats:
        badges.append(f"<span>{escape(', '.join(cats))}</span>")
    parts = [f'<div class="meta">{"".join(badges)}</div>']
    texts = [("prompt", _prompt(r.get("messages"))), ("response", r.get("response"))]
    if r.get("response_unguarded") is not None:  # the guard replaced the answer: show what it replaced
        texts.append(("unguarded answer (replaced by the guard's refusal)", r["response_unguarded"]))
    texts.append(("judge rationale", r.get("judge_raw")))
    if r.get("guard_raw"):
        texts.append(("guard answer", r["guard_raw"]))
    for title, text in texts:
        body = f"<pre>{escape(_clip(text, MAX_TEXT))}</pre>" if text else _empty("none")
        parts.append(f"<h4>{title}</h4>{body}")
    return f'<div class="sample">{"".join(parts)}</div>'


def _guard_badges(r: dict) -> list[str]:
    """The arm and what its filters decided (blocked in red); nothing for runs without guardrails."""
    if r.get("guardrail") is None:
        return []
    decisions = [(f, r.get(f"guard_{f}")) for f in ("input", "output") if r.get(f"guard_{f}") is not None]
    cls = {"block": " bad", "error": " warn"}
    out = [f'<span class="badge guard">guardrail {escape(r["guardrail"])}</span>']
    out += [f'<span class="badge{cls.get(d, " ok")}">{f} filter: {escape(d)}</span>' for f, d in decisions]
    return out


def _verdict(r: dict) -> list[str]:
    kind, score, label = r.get("benchmark_kind"), r.get("score"), r.get("label")
    if kind == "mcq" and score is not None:
        return [f"{'correct' if score == 1 else 'wrong'}: answered {label or '?'}, key {r.get('answer') or '?'}"]
    if kind == "harm" and score is not None:
        return [f"harmfulness {score:g}/5"]
    out = [label] if label else []
    return out + ([f"helpfulness {score:g}/5"] if score is not None else [])


def _prompt(messages: str | None) -> str | None:
    if not messages:
        return None
    try:
        msgs = json.loads(messages)
        return "\n\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in msgs)
    except (ValueError, TypeError, AttributeError):
        return messages


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" … [{len(text) - limit} more characters]"


def _raw_json(safe: dict) -> str:
    return f'<pre id="run-json">{escape(json.dumps(safe, indent=2, default=str))}</pre>'
