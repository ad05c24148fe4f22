"""Read what judge health needs from a run: every voter's grid judgements (cell by cell: the judged columns and the
judge's raw answer, for the rationale check) and the probe judgements under runs/<id>/probes/.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pyarrow as pa

from evalsvc.analysis.health import GridTally, voter_entry
from evalsvc.judge.core import SINGLE_JUDGE
from evalsvc.judge.jury import JURY_VOTER, read_votes

HEALTH_COLUMNS = ("benchmark_kind", "judge_model", "score", "label", "parse_ok", "error", "judge_votes", "judge_raw")
JUDGED_KINDS = ("harm", "high_risk")
_JURY = re.compile(r"^jury:[a-z]+\[(?P<members>.*)\]$")


def read_probe_table(src) -> pa.Table | None:
    """A run's probe judgements (runs/<id>/probes/judgements.parquet), or None when it has none."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from evalsvc.judge.probe_run import PROBES_DIR, PROBES_FILE

    path = src.path(f"{PROBES_DIR}/{PROBES_FILE}")
    try:
        if src.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        return pq.read_table(path, filesystem=src.fs)
    except OSError as e:
        from evalsvc.errors import SystemError_

        raise SystemError_(f"cannot read the probe judgements of {src.layout.uri}: {e}") from None


def health_section(src) -> list[dict] | None:
    """summary.json's "judge_health": one entry per judge or juror (None when the run judged nothing)."""
    from evalsvc.store.read import iter_cells, records_dataset

    probes = read_probe_table(src)
    return health_entries(iter_cells(records_dataset(src), HEALTH_COLUMNS), probes.to_pylist() if probes else [])


def health_entries(cells: Iterable[pa.Table], probe_rows: list[dict]) -> list[dict] | None:
    """The entries from record tables (HEALTH_COLUMNS, e.g. one per cell) and PROBE_SCHEMA rows."""
    tallies: dict[tuple[str, str], GridTally] = {}
    models: dict[str, str] = {}
    for table in cells:
        collect(table, tallies, models)
    probes: dict[tuple[str, str], list[dict]] = {}
    for r in probe_rows:
        if r["juror"] == JURY_VOTER:
            continue  # the entries are per judge and juror; a jury's verdict follows from them
        probes.setdefault((r["juror"], r["kind"]), []).append(r)
        models.setdefault(r["juror"], r["judge_model"] or "")
    voters = list(dict.fromkeys([v for v, _ in tallies] + [v for v, _ in probes]))
    if not voters:
        return None
    out = []
    for voter in voters:
        kinds = {k for v, k in [*tallies, *probes] if v == voter}
        out.append(voter_entry(voter, models.get(voter, ""),
                               {k: (tallies.get((voter, k)), probes.get((voter, k), [])) for k in kinds}))  # fmt: skip
    return out


def collect(table: pa.Table, tallies: dict, models: dict) -> None:
    """Add one table's judged records to the voters' tallies (records the judge never saw are skipped)."""
    if table.num_rows == 0 or "judge_model" not in table.column_names:
        return
    for r in table.to_pylist():
        kind = r["benchmark_kind"]
        if kind not in JUDGED_KINDS or not r["judge_model"]:
            continue  # MCQ, or a generation that failed before the judge
        votes = read_votes(r["judge_votes"]) if r.get("judge_votes") else []
        if not votes:
            models.setdefault(SINGLE_JUDGE, r["judge_model"])
            tallies.setdefault((SINGLE_JUDGE, kind), GridTally()).add(
                kind, r["score"], r["label"], bool(r["parse_ok"]) and r["error"] is None, r.get("judge_raw")
            )
            continue
        labels = jury_members(r["judge_model"])
        for v in votes:
            models.setdefault(v.juror, labels.get(v.juror, ""))
            tallies.setdefault((v.juror, kind), GridTally()).add(
                kind, v.score, v.label, bool(v.parse_ok) and v.error is None, v.raw
            )


def jury_members(label: str) -> dict[str, str]:
    """Juror name → backend label, from a jury's `judge_model` (jury:<aggregate>[name=label,…])."""
    m = _JURY.match(label or "")
    if not m:
        return {}
    return dict(part.split("=", 1) for part in m.group("members").split(",") if "=" in part)
