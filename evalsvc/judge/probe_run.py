"""Score a run's known-answer probes through the judge stage itself and store them under runs/<id>/probes/.

One row per probe × voter (the single judge, or each juror and the jury's verdict), like calibration's judgements;
they are never written among the records, so no grid metric ever sees them.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pyarrow as pa

from evalsvc.judge.core import SINGLE_JUDGE
from evalsvc.judge.jury import JURY_VOTER, Jury, read_votes
from evalsvc.judge.probes import Probe, load_probes, probe_rows
from evalsvc.store.uri import S3Conn, filesystem, join

PROBES_DIR = "probes"  # under runs/<id>/
PROBES_FILE = "judgements.parquet"
PROBE_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),  # harm | high_risk: the rubric that scored it
        ("probe_id", pa.string()),
        ("anchor", pa.string()),  # safe_reference | compliant | helpful_answer | over_refusal
        ("source", pa.string()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("expected_score", pa.float64()),  # harm: 1 (safe) or 5 (compliant)
        ("expected_label", pa.string()),  # high_risk: the reference behaviour
        ("accepts", pa.string()),  # what counts as agreeing, in words
        ("juror", pa.string()),  # "judge", a juror's name, or "(jury)" for a jury's verdict
        ("judge_model", pa.string()),
        ("rubric_id", pa.string()),
        ("rubric_version", pa.string()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("parse_ok", pa.bool_()),
        ("agrees", pa.bool_()),  # parsed and within what the probe accepts
        ("raw", pa.string()),
        ("error", pa.string()),
    ]
)


def select_probes(n: int, kinds: list[str]) -> list[Probe]:
    """`n` probes for each judged kind of the run (fewer where a kind's sets are smaller)."""
    return [p for kind in sorted(set(kinds)) for p in load_probes(kind, n)]


def run_probes(cfg, probes: list[Probe]) -> pa.Table:
    """Judge the probes with the run's judge stage (its JudgeConfig: same rubric, prompt, parser and decoding)."""
    records = asyncio.run(_judge(cfg, probe_rows(probes, cfg.run_id)))
    return probe_table(probes, records, cfg.target)


async def _judge(cfg, rows: list[dict]) -> list[dict]:
    from evalsvc.judge.stage import JudgeStage

    stage = JudgeStage(replace(cfg, progress_actor=None))  # built inside the loop its Serve handles will use
    out: list[dict] = []
    async for table in stage(pa.Table.from_pylist(rows)):
        out += table.to_pylist()
    return out


def probe_table(probes: list[Probe], records: list[dict], target) -> pa.Table:
    """PROBE_SCHEMA rows from the judge stage's records of `probes` (matched by item id)."""
    by_id = {r["item_id"]: r for r in records}
    members = dict(target.members) if isinstance(target, Jury) else {}
    rows = []
    for p in probes:
        rec = by_id[p.probe_id]
        if members:
            for v in read_votes(rec["judge_votes"]) if rec.get("judge_votes") else []:
                rows.append(_row(p, rec, v.juror, members[v.juror].label if v.juror in members else "", v.score,
                                 v.label, v.parse_ok, v.raw, v.error))  # fmt: skip
            rows.append(_row(p, rec, JURY_VOTER, rec["judge_model"], rec["score"], rec["label"], rec["parse_ok"],
                             None, rec["error"]))  # fmt: skip
        else:
            rows.append(_row(p, rec, SINGLE_JUDGE, rec["judge_model"], rec["score"], rec["label"], rec["parse_ok"],
                             rec["judge_raw"], rec["error"]))  # fmt: skip
    return pa.Table.from_pylist(rows, schema=PROBE_SCHEMA)


def _row(p: Probe, rec: dict, juror: str, judge_model: str, score, label, parse_ok, raw, error) -> dict:
    ok = bool(parse_ok) and error is None
    return {
        "run_id": rec.get("run_id"), "kind": p.kind, "probe_id": p.probe_id, "anchor": p.anchor, "source": p.source,
        "question": p.question, "response": p.response, "expected_score": p.expected_score,
        "expected_label": p.expected_label, "accepts": p.accepts, "juror": juror, "judge_model": judge_model,
        "rubric_id": rec.get("rubric_id"), "rubric_version": rec.get("rubric_version"), "score": score,
        "label": label, "parse_ok": ok, "agrees": ok and p.agrees(score, label), "raw": raw, "error": error,
    }  # fmt: skip


def write_probes(table: pa.Table, run_uri: str, conn: S3Conn | None = None) -> str:
    """Write the judgements as runs/<id>/probes/judgements.parquet (local or s3://); returns its URI."""
    import pyarrow.parquet as pq

    folder = join(run_uri, PROBES_DIR)
    fs, base = filesystem(folder, conn)
    if not folder.startswith("s3://"):
        fs.create_dir(base, recursive=True)
    pq.write_table(table, join(base, PROBES_FILE), filesystem=fs)
    return join(folder, PROBES_FILE)
