"""The calibration slice: a user's file of (question, response, reference label) scored by every juror and the jury.

Loads and checks the file (JSONL/CSV/Parquet, local or s3://), runs the judge(s) from the driver, and stores the
judgements as Parquet under runs/<id>/calibration/; evalsvc.analysis.calibration turns them into agreement figures.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import pyarrow as pa

from evalsvc.engines.chat import ChatTarget
from evalsvc.errors import EvalsvcError, UserError
from evalsvc.judge.core import JudgeSettings, Judging
from evalsvc.judge.jury import JURY_VOTER, Jury, Vote, verdict
from evalsvc.manifest.judging import Calibration, Judge
from evalsvc.specs.judge_parsers import HIGH_RISK_LABELS
from evalsvc.specs.rubric import Rubric
from evalsvc.store.uri import S3Conn, filesystem, join

CALIBRATION_DIR = "calibration"  # under runs/<id>/
CALIBRATION_FILE = "judgements.parquet"
_TAG = "judge-calibration"  # stands in for a benchmark name in the shared readers' messages (rewritten below)
CALIBRATION_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("kind", pa.string()),  # harm | high_risk: the rubric the reference follows
        ("item_id", pa.string()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("reference_score", pa.float64()),  # harm: the reference 1-5 score
        ("reference_label", pa.string()),  # high_risk: the reference behaviour label
        ("juror", pa.string()),  # a juror's name, the single judge's name "judge", or "(jury)" for the verdict
        ("judge_model", pa.string()),
        ("rubric_id", pa.string()),
        ("rubric_version", pa.string()),
        ("score", pa.float64()),
        ("label", pa.string()),
        ("parse_ok", pa.bool_()),
        ("raw", pa.string()),
        ("error", pa.string()),
    ]
)
RUBRIC_FIELDS = ("reference", "category", "expected_behavior", "principle", "control")


@dataclass(frozen=True)
class CalibrationItem:
    item_id: str
    question: str
    response: str
    reference: float | str  # a 1-5 score (harm) or a behaviour label (high_risk)
    fields: dict  # optional rubric placeholders the file carries (category, control, ...)


def load_calibration(cal: Calibration, conn: S3Conn | None = None) -> list[CalibrationItem]:
    """The labelled rows of `cal.path`; every problem is a UserError naming judge.calibration.<field> and the fix."""
    from evalsvc.benchmarks.custom import _records, read_bytes
    from evalsvc.manifest.schema import ColumnMap

    # The benchmark readers parse the file; their own column checks are off (nothing mapped) so ours name our fields.
    nothing = ColumnMap.model_construct(text=None, answer=None, options=None, option_columns=None, item_id=None,
                                        reference=None, categories={})  # fmt: skip
    try:
        data = read_bytes(_TAG, cal.path, conn)
        records = [(ref.label, rec) for ref, rec in _records(_TAG, cal.path, data, nothing, True)]
    except EvalsvcError as e:
        raise type(e)(_ours(e.message), [_ours(p) for p in e.problems]) from None
    if not records:
        raise UserError(f"judge.calibration.path: {cal.path} has no rows; add labelled rows or fix the path")
    _check_columns(cal, records[0][1])
    items, seen = [], {}
    for index, (where, rec) in enumerate(records):
        item = _item(cal, rec, where, index)
        if item.item_id in seen:
            raise UserError(f"judge.calibration.item_id: {cal.path} {where}: duplicate id {item.item_id!r} (first at "
                            f"{seen[item.item_id]}); ids must be unique")  # fmt: skip
        seen[item.item_id] = where
        items.append(item)
    return items


def _ours(message: str) -> str:
    return message.replace(f"benchmarks.{_TAG}.path", "judge.calibration.path").replace(
        f"benchmarks.{_TAG}", "judge.calibration.path"
    )


def _check_columns(cal: Calibration, first: dict) -> None:
    wanted = {"question": cal.question, "response": cal.response, "label": cal.label, "item_id": cal.item_id}
    for field, column in wanted.items():
        if column is not None and column not in first:
            raise UserError(
                f"judge.calibration.{field}: {cal.path} has no column {column!r} (columns: {', '.join(first)}); "
                f"set judge.calibration.{field} to the column holding the {field.replace('_', ' ')}"
            )


def _item(cal: Calibration, rec: dict, where: str, index: int) -> CalibrationItem:
    def text(field: str, column: str, required: bool) -> str:
        value = rec.get(column)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if value is None or not isinstance(value, str) or (required and not value.strip()):
            raise UserError(f"judge.calibration.{field}: {cal.path} {where}, column {column!r}: expected text, got "
                            f"{value!r}; fill it in or point judge.calibration.{field} at another column")  # fmt: skip
        return value

    item_id = text("item_id", cal.item_id, True).strip() if cal.item_id else f"cal-{index:05d}"
    reference = reference_value(cal.kind, rec.get(cal.label))
    if reference is None:
        want = "a whole number 1 (safe) to 5 (harmful)" if cal.kind == "harm" else f"one of {', '.join(HIGH_RISK_LABELS)}"
        raise UserError(f"judge.calibration.label: {cal.path} {where}, column {cal.label!r}: {rec.get(cal.label)!r} "
                        f"is not a {cal.kind} reference; write {want} (or fix judge.calibration.kind)")  # fmt: skip
    fields = {k: rec[k] for k in RUBRIC_FIELDS if rec.get(k) not in (None, "")}
    return CalibrationItem(item_id, text("question", cal.question, True), text("response", cal.response, False),
                           reference, fields)  # fmt: skip


def reference_value(kind: str, value: object) -> float | str | None:
    """The reference as the judge would give it (a 1-5 float or a canonical label), or None when it is not one."""
    if kind == "harm":
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*[1-5](\.0*)?\s*", value):
            return float(value)
        if isinstance(value, (int, float)) and value in (1, 2, 3, 4, 5):
            return float(value)
        return None
    if isinstance(value, str):
        label = re.sub(r"[\s-]+", "_", value.strip().lower())
        return label if label in HIGH_RISK_LABELS else None
    return None


def load_slice(judge: Judge | None, conn: S3Conn | None = None) -> list[CalibrationItem] | None:
    """The manifest's calibration slice, loaded and checked (None when it has none)."""
    if judge is None or judge.calibration is None:
        return None
    return load_calibration(judge.calibration, conn)


def calibrate_run(judge: Judge, target, items: list[CalibrationItem], run_uri: str, conn: S3Conn | None) -> str:
    """Score the slice as part of a run: judgements go to runs/<id>/calibration/; returns the file's URI."""
    table = calibrate(judge, target, items, run_id=run_uri.rstrip("/").rsplit("/", 1)[-1])
    return write_calibration(table, join(run_uri, CALIBRATION_DIR), conn)


def calibrate(judge: Judge, target: ChatTarget | Jury, items: list[CalibrationItem], run_id: str = "") -> pa.Table:
    """Score the loaded slice with the manifest's judge (its rubric for the slice's kind and request settings)."""
    from evalsvc.specs.rubric import default_rubric, load_rubric

    cal = judge.calibration
    rubric = load_rubric(judge.rubrics.get(cal.kind) or default_rubric(cal.kind))
    settings = JudgeSettings(judge.temperature, judge.max_tokens, judge.guided, judge.concurrency)
    return run_calibration(items, cal.kind, target, rubric, settings, run_id)


def run_calibration(
    items: list[CalibrationItem], kind: str, target: ChatTarget | Jury, rubric: Rubric, settings: JudgeSettings,
    run_id: str = "",
) -> pa.Table:  # fmt: skip
    """Every juror (and the jury's verdict) on every item: a CALIBRATION_SCHEMA table, one row per item × voter."""
    return asyncio.run(_run(items, kind, target, rubric, settings, run_id))


async def _run(items, kind, target, rubric, settings, run_id) -> pa.Table:
    judging = Judging(target, settings)  # made inside the loop the Serve handles will use

    async def one(item: CalibrationItem) -> list[Vote]:
        return await judging.votes(rubric, {"question": item.question, **item.fields}, item.response)

    all_votes = await asyncio.gather(*(one(item) for item in items))
    rows = []
    labels = judging.labels()
    for item, votes in zip(items, all_votes):
        rows += [_row(run_id, kind, item, v, labels[v.juror], rubric) for v in votes]
        if isinstance(target, Jury):
            v = verdict(votes, kind, target.aggregate)
            jury_vote = Vote(JURY_VOTER, v.score, v.label, v.parse_ok, None, v.error)
            rows.append(_row(run_id, kind, item, jury_vote, target.label, rubric))
    return pa.Table.from_pylist(rows, schema=CALIBRATION_SCHEMA)


def _row(run_id: str, kind: str, item: CalibrationItem, v: Vote, judge_model: str, rubric: Rubric) -> dict:
    return {
        "run_id": run_id, "kind": kind, "item_id": item.item_id, "question": item.question, "response": item.response,
        "reference_score": item.reference if kind == "harm" else None,
        "reference_label": item.reference if kind != "harm" else None,
        "juror": v.juror, "judge_model": judge_model, "rubric_id": rubric.id, "rubric_version": rubric.version,
        "score": v.score, "label": v.label, "parse_ok": v.parse_ok, "raw": v.raw, "error": v.error,
    }  # fmt: skip


def write_calibration(table: pa.Table, folder: str, conn: S3Conn | None = None) -> str:
    """Write the judgements as `folder`/judgements.parquet (local or s3://); returns its URI."""
    import pyarrow.parquet as pq

    fs, base = filesystem(folder, conn)
    if not folder.startswith("s3://"):
        fs.create_dir(base, recursive=True)
    pq.write_table(table, join(base, CALIBRATION_FILE), filesystem=fs)
    return join(folder, CALIBRATION_FILE)
