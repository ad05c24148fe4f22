"""The report's judge-health panel, first thing under the header: a red banner naming each flagged judge or juror
(its scores are not evidence of safety), or a green line when every judge passed; the figures table beneath it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from evalsvc.render.health_format import health_notes, health_sections, health_warnings


def health_html(entries: list[dict] | None, table: Callable) -> str:
    """`table(header, body, row_classes, table_id)` renders a table the report's way."""
    if not entries:
        return ""
    warnings = health_warnings(entries)
    body = "".join(f"<p><b>⚠ {escape(w)}</b></p>" for w in warnings)
    notes = "".join(f"<li>{escape(n)}</li>" for n in health_notes(entries))
    tables = "".join(table(header, rows, ["flag" if r[-1] != "none" else "" for r in rows], "judge-health-table")
                     for _, header, rows in health_sections(entries))  # fmt: skip
    details = f"<details{' open' if warnings else ''}><summary>judge health figures</summary>{tables}" + (
        f"<ul>{notes}</ul>" if notes else "") + "</details>"  # fmt: skip
    if warnings:
        return (f'<section id="judge-health" class="card health-bad" role="alert"><h2>Judge health: flagged</h2>'
                f"{body}{details}</section>")  # fmt: skip
    return (f'<section id="judge-health" class="card health-ok"><span class="badge ok">judge health: ok</span> every '
            f"judge and juror agreed with its known-answer probes{details}</section>")  # fmt: skip
