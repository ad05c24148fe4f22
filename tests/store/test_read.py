"""Reading runs: Hive partitions, column selection (text never read for summaries), samples, run.json, errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fixtures.synthetic import SyntheticRun, cell_table, text_pool

from evalsvc.analysis.summary import summarize_run
from evalsvc.errors import SystemError_, UserError
from evalsvc.store.read import (
    cell_keys,
    open_run,
    read_records,
    read_run_json,
    read_samples,
    read_small,
    records_dataset,
)
from evalsvc.store.record import FILE_COLUMNS


def test_cells_come_from_the_partition_paths(small_run):
    keys = cell_keys(records_dataset(small_run))
    assert len(keys) == 12
    assert ("model-a", "msb", "basic") in keys and ("model-b", "medharm", "safety") in keys


def test_read_small_has_partition_columns_and_no_text(small_run):
    table = read_small(records_dataset(small_run))
    assert table.num_rows == 12 * 60
    assert {"model", "benchmark", "strategy", "score"} <= set(table.column_names)
    assert not {"messages", "response", "judge_raw"} & set(table.column_names)


def _run_with_unreadable_text(root) -> None:
    """A run whose text columns hold lists: reading them as the record's strings fails, so any read of them shows."""
    spec = SyntheticRun(models=("m",), strategies=("basic",), benchmarks={"msb": "harm"}, n_items=30)
    table = cell_table(spec, 0, "msb", 0, text_pool(20)).select(list(FILE_COLUMNS))
    for name in ("messages", "response", "judge_raw"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pa.array([[1, 2]] * table.num_rows, pa.list_(pa.int64())))
    part = root / "runs" / "t" / "records" / "model=m" / "benchmark=msb" / "strategy=basic"
    part.mkdir(parents=True)
    pq.write_table(table, part / "part-0.parquet")


def test_summaries_never_read_the_text_columns(tmp_path):
    _run_with_unreadable_text(tmp_path)
    src = open_run("t", str(tmp_path))
    summary = summarize_run(src)  # would raise if messages/response/judge_raw were read
    assert summary.num_rows > 1
    with pytest.raises((pa.ArrowException, SystemError_)):
        read_small(records_dataset(src), ("item_id", "response"))  # reading a text column trips: the trap works


def test_samples_show_problems_first_with_their_text(small_run):
    samples = read_samples(records_dataset(small_run), per_cell=3)
    assert len(samples) == 12
    for cell, rows in samples.items():
        assert 1 <= len(rows) <= 3
        assert len({(r["item_id"], r["sample_index"]) for r in rows}) == len(rows)
        assert all(r["response"] and r["messages"] for r in rows)
        assert all((r["model"], r["benchmark"], r["strategy"]) == cell for r in rows)
    small = read_small(records_dataset(small_run)).to_pylist()
    with_errors = {(r["model"], r["benchmark"], r["strategy"]) for r in small if r["error"]}
    assert with_errors  # the synthetic run has some errors…
    for cell, rows in samples.items():  # …and a cell that has one shows it first
        assert bool(rows[0]["error"]) == (cell in with_errors)


def test_run_json_is_read_when_present_and_none_when_absent(small_run, tmp_path):
    assert read_run_json(small_run)["run_id"] == "small"
    _run_with_unreadable_text(tmp_path)
    assert read_run_json(open_run("t", str(tmp_path))) is None


def test_run_json_that_is_not_json_is_a_system_error(tmp_path):
    _run_with_unreadable_text(tmp_path)
    (tmp_path / "runs" / "t" / "run.json").write_text("{not json")
    with pytest.raises(Exception, match="run.json"):
        read_run_json(open_run("t", str(tmp_path)))


def test_a_run_without_records_is_a_user_error_naming_the_path(tmp_path):
    with pytest.raises(UserError, match="no records there"):
        records_dataset(open_run("nope", str(tmp_path)))
    with pytest.raises(UserError, match="--output"):
        open_run("nope", None)


def test_read_records_by_uri_for_the_run_spine(small_run):
    table = read_records(small_run.layout.records)
    assert table.num_rows == 12 * 60
    assert json.dumps(sorted(set(table["benchmark_kind"].to_pylist()))) == '["harm", "high_risk", "mcq"]'


@pytest.mark.slow
def test_s3_run_reads_like_a_local_one(s3, s3_uri, small_run):
    from fixtures.synthetic import write_synthetic_run

    write_synthetic_run(s3_uri, "small", SyntheticRun(), conn=s3.conn)  # the same seeded run as small_run
    remote = open_run(f"{s3_uri}/runs/small", conn=s3.conn)
    assert summarize_run(remote).equals(summarize_run(small_run))
    assert read_run_json(remote)["run_id"] == "small"
    samples = read_samples(records_dataset(remote), per_cell=2)
    assert len(samples) == 12 and all(len(rows) == 2 and rows[0]["response"] for rows in samples.values())
    missing = open_run(f"{s3_uri}/runs/missing", conn=s3.conn)
    assert read_run_json(missing) is None
    with pytest.raises(UserError, match="no records there"):
        records_dataset(missing)


def test_files_with_looser_types_are_cast_to_the_record_schema(tmp_path):
    """Writers may store an all-null column as type null and ints as int64 (Ray Data does): reads still agree."""
    spec = SyntheticRun(models=("m",), strategies=("basic",), benchmarks={"msb": "harm"}, n_items=20, error=0.0)
    table = cell_table(spec, 0, "msb", 0, text_pool(20)).select(list(FILE_COLUMNS))
    loose = table.set_column(table.schema.get_field_index("error"), "error", pa.nulls(table.num_rows))
    i = loose.schema.get_field_index("sample_index")
    loose = loose.set_column(i, "sample_index", loose["sample_index"].cast(pa.int64()))
    for name, t in (("strict", table), ("loose", loose)):
        part = tmp_path / name / "runs" / "r" / "records" / "model=m" / "benchmark=msb" / "strategy=basic"
        part.mkdir(parents=True)
        pq.write_table(t, part / "part-0.parquet")
    strict = summarize_run(open_run("r", str(tmp_path / "strict")))
    assert summarize_run(open_run("r", str(tmp_path / "loose"))).equals(strict)
    samples = read_samples(records_dataset(open_run("r", str(tmp_path / "loose"))), per_cell=2)
    assert [r["error"] for r in samples[("m", "msb", "basic")]] == [None, None]


def test_a_record_written_twice_counts_once(tmp_path):
    """A retried task may write part of a batch again: the duplicate rows share a record key and count once."""
    spec = SyntheticRun(models=("m",), strategies=("basic",), benchmarks={"msb": "harm"}, n_items=30)
    table = cell_table(spec, 0, "msb", 0, text_pool(20)).select(list(FILE_COLUMNS))
    part = tmp_path / "runs" / "t" / "records" / "model=m" / "benchmark=msb" / "strategy=basic"
    part.mkdir(parents=True)
    pq.write_table(table, part / "part-0.parquet")
    pq.write_table(table.slice(0, 7), part / "part-1.parquet")  # the retried batch's first 7 records again
    src = open_run("t", str(tmp_path))
    small = read_small(records_dataset(src), ("item_id", "score"))
    assert small.num_rows == 30
    assert sorted(small["item_id"].to_pylist()) == sorted(table["item_id"].to_pylist())
    overall = [r for r in summarize_run(src).to_pylist() if r["group_field"] == "overall"]
    assert overall and all(r["n"] == 30 for r in overall)


def test_a_record_judged_again_after_its_judge_failed_is_read_with_its_judgement_and_resumed_once(tmp_path):
    """A judge outage outlasting every retry leaves records with a judge error; their answers are kept, a resume
    judges them again, and readers then take the judged row, wherever it sits among the files."""
    from evalsvc.store.index import scan_keys

    spec = SyntheticRun(models=("m",), strategies=("basic",), benchmarks={"msb": "harm"}, n_items=10)
    table = cell_table(spec, 0, "msb", 0, text_pool(20)).select(list(FILE_COLUMNS))
    part = tmp_path / "runs" / "t" / "records" / "model=m" / "benchmark=msb" / "strategy=basic"
    part.mkdir(parents=True)
    judged = table.slice(0, 4)
    failed = table.slice(4, 6)
    failed = failed.set_column(failed.schema.get_field_index("error"), "error",
                               pa.array(["judge: ActorDiedError: replica lost"] * 6))  # fmt: skip
    failed = failed.set_column(failed.schema.get_field_index("score"), "score", pa.nulls(6, pa.float64()))
    pq.write_table(pa.concat_tables([judged, failed]), part / "part-0.parquet")
    records = str(tmp_path / "runs" / "t" / "records")
    index = scan_keys([records], None)
    keys = table["record_key"].to_pylist()
    assert index.rejudge == set(keys[4:]) and index.present == set(keys[:4])
    assert index.generated == set(keys)  # their answers are reused, not generated again

    pq.write_table(table.slice(4, 3), part / "part-1.parquet")  # the resume judged three of them again
    index = scan_keys([records], None)
    assert index.rejudge == set(keys[7:]) and index.present == set(keys[:7])
    small = read_small(records_dataset(open_run("t", str(tmp_path))), ("record_key", "score", "error"))
    by_key = {r["record_key"]: r for r in small.to_pylist()}
    assert small.num_rows == 10
    assert [by_key[k]["error"] is None for k in keys] == [True] * 7 + [False] * 3
    scores = dict(zip(keys, table["score"].to_pylist()))
    assert all(by_key[k]["score"] == scores[k] for k in keys[:7])
