"""What is already computed: record keys found in existing Parquet records, read from the key columns only.

Used to resume a run in place (skip keys it already has) and to reuse generations/judgements of earlier runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from evalsvc.store.uri import S3Conn, filesystem, join

INDEX_COLUMNS = ("record_key", "error", "benchmark_kind", "judge_model", "rubric_id", "rubric_version")
JUDGE_ERROR = "judge:"  # how the error of a record whose generation succeeded and whose judging failed begins


@dataclass
class KeyIndex:
    """Keys present in a set of record folders, split by how much of the work they carry."""

    present: set[str] = field(default_factory=set)  # a record with this key (resume: never write it again)
    generated: set[str] = field(default_factory=set)  # a successful generation exists (judge may still be needed)
    judged: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # key -> (judge model, rubric id, version)
    sources: list[str] = field(default_factory=list)  # records URIs the keys came from
    rejudge: set[str] = field(default_factory=set)  # only a failed judging here: generated, to be judged again

    def __len__(self) -> int:
        return len(self.present)


def record_folders(root: str, conn: S3Conn | None, exclude_run: str | None = None) -> list[str]:
    """The records/ folders of every run under an output root (or a cache prefix laid out the same way)."""
    fs, base = filesystem(join(root, "runs"), conn)
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
    except OSError:
        return []
    out = []
    for info in infos:
        if info.type == pafs.FileType.Directory and info.base_name != exclude_run:
            out.append(join(root, "runs", info.base_name, "records"))
    return sorted(out)


def scan_keys(records_uris: list[str], conn: S3Conn | None) -> KeyIndex:
    index = KeyIndex()
    for uri in records_uris:
        table = _key_columns(uri, conn)
        if table is None or table.num_rows == 0:
            continue
        index.sources.append(uri)
        keys = table["record_key"].to_pylist()
        index.present.update(keys)
        ok = pc.is_null(table["error"]).to_pylist()
        failed = pc.fill_null(pc.starts_with(table["error"], pattern=JUDGE_ERROR), False).to_pylist()
        judged = pc.and_(pc.is_valid(table["rubric_id"]), pc.is_null(table["error"])).to_pylist()
        kinds = table["benchmark_kind"].to_pylist()
        jm, rid, rv = (table[c].to_pylist() for c in ("judge_model", "rubric_id", "rubric_version"))
        for i, key in enumerate(keys):
            if failed[i]:
                index.rejudge.add(key)
            if ok[i]:
                index.generated.add(key)
                if judged[i] or kinds[i] == "mcq":
                    index.judged[key] = (jm[i] or "", rid[i] or "", rv[i] or "")
    # A record whose judge failed (an outage outlasting every retry) keeps its answer: a resume judges it again and
    # readers then take the judged row. Once some row of the key is judged, the failed one is just history.
    index.rejudge -= index.generated
    index.generated |= index.rejudge
    index.present -= index.rejudge
    return index


def _key_columns(uri: str, conn: S3Conn | None) -> pa.Table | None:
    fs, path = filesystem(uri, conn)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.Directory:
        return None
    dataset = pads.dataset(path, filesystem=fs, format="parquet", partitioning="hive", exclude_invalid_files=True)
    cols = [c for c in INDEX_COLUMNS if c in dataset.schema.names]
    table = dataset.to_table(columns=cols)
    for c in INDEX_COLUMNS:
        if c not in table.column_names:
            table = table.append_column(c, pa.nulls(table.num_rows, pa.string()))
    return table
