"""Custom benchmark files: JSONL, CSV and Parquet load; every kind of broken file is a UserError naming file and field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalsvc.benchmarks import benchmark_version, load_items
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Benchmark

HARM = {"item_id": "id", "text": "prompt", "reference": "ref", "categories": {"principle": "p"}}
MCQ = {"text": "q", "options": "opts", "answer": "ans"}
OPTS = {"A": "yes", "B": "no"}


def lines(*rows) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()


def parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@dataclass
class Bad:
    name: str
    content: bytes | None  # None: the file does not exist
    expect: list[str]  # substrings the message must contain (besides the benchmark name and the file)
    fmt: str = "harm"
    columns: dict | None = field(default_factory=lambda: dict(HARM))
    suffix: str = ".jsonl"


BIG = "x" * 1_100_000
CASES = [
    Bad("missing-file", None, ["benchmarks.b.path", "no such file"]),
    Bad("unknown-suffix", b"{}", ["benchmarks.b.path", "unknown file type .txt"], suffix=".txt"),
    Bad("empty-jsonl", b"", ["has no items"]),
    Bad("blank-jsonl", b"\n\n  \n", ["has no items"]),
    Bad("empty-csv", b"", ["is empty"], suffix=".csv"),
    Bad("header-only-csv", b"id,prompt,ref,p\n", ["has no items"], suffix=".csv"),
    Bad(
        "latin1-jsonl",
        lines({"id": "1", "prompt": "ok", "ref": "", "p": "1"}) + b'{"id": "2", "prompt": "caf\xe9"}\n',
        ["line 2", "not UTF-8", "0xe9"],
    ),
    Bad("latin1-csv", b"id,prompt,ref,p\n1,caf\xe9,,1\n", ["line 2", "not UTF-8"], suffix=".csv"),
    Bad("missing-key-jsonl", lines({"id": "1", "ref": "", "p": "1"}), ["line 1", "column 'prompt'", "missing"]),
    Bad("missing-column-csv", b"id,text,ref,p\n1,hi,,1\n", ["no column 'prompt'", "columns.text"], suffix=".csv"),
    Bad(
        "missing-category-csv",
        b"id,prompt,ref\n1,hi,\n",
        ["no column 'p'", "columns.categories.principle"],
        suffix=".csv",
    ),
    Bad(
        "missing-column-parquet",
        parquet(pa.table({"id": ["1"], "prompt": ["hi"], "p": ["1"]})),
        ["no column 'ref'", "columns.reference"],
        suffix=".parquet",
    ),
    Bad(
        "duplicate-id-jsonl",
        lines(*({"id": "a7", "prompt": "x", "ref": "", "p": "1"} for _ in range(3))),
        ["line 2", "column 'id'", "duplicate item id 'a7'", "first at line 1"],
    ),
    Bad(
        "duplicate-id-csv",
        b"id,prompt,ref,p\n7,x,,1\n8,y,,1\n7,z,,1\n",
        ["row 3", "column 'id'", "duplicate item id '7'", "first at row 1"],
        suffix=".csv",
    ),
    Bad("empty-id", lines({"id": " ", "prompt": "x", "ref": "", "p": "1"}), ["line 1", "column 'id'", "empty"]),
    Bad(
        "bad-json-line",
        lines({"id": "1", "prompt": "x", "ref": "", "p": "1"}, "", '{"id": "2", "prompt": '),
        ["line 3", "not valid JSON"],
    ),
    Bad("json-array-line", lines('["not", "an", "object"]'), ["line 1", "expected a JSON object, got list"]),
    Bad(
        "csv-extra-fields",
        b"id,prompt,ref,p\n1,x,,1\n2,a,b,c,d\n",
        ["row 2", "5 fields but the header has 4"],
        suffix=".csv",
    ),
    Bad("csv-missing-fields", b"id,prompt,ref,p\n1,x\n", ["row 1", "2 fields but the header has 4"], suffix=".csv"),
    Bad("csv-bad-quote", b'id,prompt,ref,p\n1,"x"y,,1\n', ["row 1", "not valid CSV"], suffix=".csv"),
    Bad(
        "csv-duplicate-header",
        b"id,prompt,prompt,p,ref\n1,x,y,1,\n",
        ["column 'prompt' appears more than once"],
        suffix=".csv",
    ),
    Bad("not-parquet", b"PAR1 this is not parquet", ["not a readable Parquet file"], suffix=".parquet"),
    Bad("empty-text", lines({"id": "1", "prompt": "  ", "ref": "", "p": "1"}), ["line 1", "column 'prompt'", "empty"]),
    Bad(
        "text-not-string",
        lines({"id": "1", "prompt": {"a": 1}, "ref": "", "p": "1"}),
        ["line 1", "column 'prompt'", "expected text, got dict"],
    ),
    Bad(
        "category-not-text",
        lines({"id": "1", "prompt": "x", "ref": "", "p": [1]}),
        ["line 1", "column 'p'", "expected text"],
    ),
    Bad(
        "oversize-jsonl",
        lines({"id": "1", "prompt": "x", "ref": "", "p": "1"}, {"id": "2", "prompt": BIG, "ref": "", "p": "1"}),
        ["line 2", "column 'prompt'", "over the 1 MB limit"],
    ),
    Bad(
        "oversize-csv",
        f"id,prompt,ref,p\n1,x,,1\n2,y,{BIG},1\n".encode(),
        ["row 2", "column 'ref'", "1 MB"],
        suffix=".csv",
    ),
    Bad(
        "oversize-parquet",
        parquet(pa.table({"id": ["1"], "prompt": [BIG], "ref": [""], "p": ["1"]})),
        ["row 1", "column 'prompt'", "1 MB"],
        suffix=".parquet",
    ),
    Bad(
        "answer-not-an-option",
        lines({"q": "?", "opts": OPTS, "ans": "A"}, {"q": "?", "opts": OPTS, "ans": "C"}),
        ["line 2", "column 'ans'", "answer 'C' is not one of the option letters AB"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "answer-index-out-of-range",
        lines({"q": "?", "opts": ["a", "b", "c"], "ans": 3}),
        ["line 1", "column 'ans'", "index 3 is outside the 3 options"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "answer-empty",
        lines({"q": "?", "opts": OPTS, "ans": ""}),
        ["column 'ans'", "answer must be one of"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "options-gap",
        lines({"q": "?", "opts": {"A": "x", "B": "y", "D": "z"}, "ans": "A"}),
        ["column 'opts'", "ABD must run A, B, C"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "one-option",
        lines({"q": "?", "opts": ["only"], "ans": "A"}),
        ["column 'opts'", "at least 2"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "empty-option",
        lines({"q": "?", "opts": {"A": "x", "B": ""}, "ans": "A"}),
        ["column 'opts'", "option B is empty"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "options-not-mapping",
        lines({"q": "?", "opts": 42, "ans": "A"}),
        ["column 'opts'", "got int"],
        fmt="mcq",
        columns=dict(MCQ),
    ),
    Bad(
        "options-bad-json-csv",
        b'q,opts,ans\n?,"{A: x}",A\n',
        ["row 1", "column 'opts'", "not valid JSON"],
        fmt="mcq",
        columns=dict(MCQ),
        suffix=".csv",
    ),
    Bad(
        "mcq-without-options",
        lines({"q": "?"}),
        ["benchmarks.b.columns", "needs `options`"],
        fmt="mcq",
        columns={"text": "q", "answer": "ans"},
    ),
    Bad(
        "mcq-without-answer",
        lines({"q": "?"}),
        ["benchmarks.b.columns.answer"],
        fmt="mcq",
        columns={"text": "q", "options": "o"},
    ),
    Bad(
        "bad-option-letter",
        lines({"q": "?"}),
        ["benchmarks.b.columns.option_columns.a1"],
        fmt="mcq",
        columns={"text": "q", "answer": "ans", "option_columns": {"a1": "x"}},
    ),
    Bad(
        "unknown-category-field",
        lines({"q": "?"}),
        ["benchmarks.b.columns.categories.severity", "not a record field"],
        columns={"text": "q", "categories": {"severity": "s"}},
    ),
    Bad(
        "medguard-missing-principle",
        lines({"question": "?", "options": OPTS, "answer": "A", "aspect": "consent", "question_type": "safety"}),
        ["line 1", "column 'principle'", "missing"],
        fmt="mcq",
        columns=None,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_broken_file_is_a_user_error_naming_benchmark_file_and_field(tmp_path, case):
    path = tmp_path / f"{case.name}{case.suffix}"
    if case.content is not None:
        path.write_bytes(case.content)
    bench = Benchmark(name="b", path=str(path), format=case.fmt, columns=case.columns)
    with pytest.raises(UserError) as e:
        load_items(bench)
    msg = e.value.message
    assert "benchmarks.b" in msg and (path.name in msg or "columns" in msg), msg
    for part in case.expect:
        assert part in msg, f"{part!r} not in {msg!r}"


def test_there_are_at_least_twenty_broken_files():
    assert len([c for c in CASES if c.content is not None or c.name == "missing-file"]) >= 20


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(UserError, match=r"benchmarks\.b\.path: .*d\.jsonl is a folder"):
        load_items(Benchmark(name="b", path=str(tmp_path / "d.jsonl"), format="harm"))


def write_all_formats(tmp_path: Path) -> list[str]:
    rows = [{"id": f"r{i}", "prompt": f"request {i}", "ref": "no" if i else None, "p": str(i % 3)} for i in range(5)]
    (tmp_path / "h.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    csv_rows = "".join(f"{r['id']},{r['prompt']},{r['ref'] or ''},{r['p']}\n" for r in rows)
    (tmp_path / "h.csv").write_text(
        "\ufeffid,prompt,ref,p\n" + csv_rows, encoding="utf-8"
    )  # with a BOM, as Excel writes
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "h.parquet")
    return [str(tmp_path / n) for n in ("h.jsonl", "h.csv", "h.parquet")]


def test_jsonl_csv_and_parquet_give_the_same_items(tmp_path):
    loaded = [load_items(Benchmark(name="b", path=p, format="harm", columns=HARM)) for p in write_all_formats(tmp_path)]
    assert loaded[0] == loaded[1] == loaded[2]
    first = loaded[0][0]
    assert (first.item_id, first.text, first.reference, first.categories) == (
        "r0",
        "request 0",
        None,
        {"principle": "0"},
    )
    assert loaded[0][1].reference == "no" and {it.kind for it in loaded[0]} == {"harm"}


def test_harm_file_without_columns_uses_the_documented_keys(tmp_path):
    path = tmp_path / "reqs.jsonl"
    path.write_text(json.dumps({"request": "r", "source": "red-team"}) + "\n", encoding="utf-8")
    [item] = load_items(Benchmark(name="b", path=str(path), format="harm", split="dev"))
    assert (item.item_id, item.text, item.split, item.categories) == ("reqs/00000", "r", "dev", {"source": "red-team"})


def test_version_is_the_file_digest_or_the_label(tmp_path):
    path = write_all_formats(tmp_path)[0]
    bench = Benchmark(name="b", path=path, format="harm", columns=HARM)
    load_items(bench)
    v1 = benchmark_version(bench)
    assert v1.startswith("sha256:") and len(v1) == len("sha256:") + 12
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "new", "prompt": "x", "ref": "", "p": "1"}) + "\n")
    assert benchmark_version(bench) != v1, "a changed file gets a new version"
    assert benchmark_version(bench.model_copy(update={"version": "v2"})) == "v2"


@pytest.mark.slow
def test_files_on_s3_load_like_local_ones(tmp_path):
    from evalsvc.store.devs3 import DevS3

    local = write_all_formats(tmp_path)
    with DevS3(tmp_path / "s3") as s3:
        s3.create_bucket("bench")
        client = s3.client()
        for p in local:
            client.upload_file(p, "bench", f"sets/{Path(p).name}")
        for p in local:
            uri = f"s3://bench/sets/{Path(p).name}"
            bench = Benchmark(name="b", path=uri, format="harm", columns=HARM)
            assert load_items(bench, s3.conn) == load_items(Benchmark(name="b", path=p, format="harm", columns=HARM))
            assert benchmark_version(bench, s3.conn) == benchmark_version(Benchmark(name="b", path=p, format="harm"))
        missing = Benchmark(name="b", path="s3://bench/sets/nope.jsonl", format="harm")
        with pytest.raises(UserError, match=r"benchmarks\.b\.path: s3://bench/sets/nope\.jsonl: no such file"):
            load_items(missing, s3.conn)
