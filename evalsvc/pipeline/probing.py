"""Judge health in a run: pick the known-answer probes of the run's judged kinds before anything loads, and score
them after the grid through the judge stage, into runs/<id>/probes/ (never among the records).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evalsvc.errors import EvalsvcError
from evalsvc.judge.probe_run import run_probes, select_probes, write_probes
from evalsvc.judge.probes import Probe
from evalsvc.store.uri import S3Conn


@dataclass
class RunProbes:
    probes: list[Probe] = field(default_factory=list)
    note: dict = field(default_factory=dict)  # run.json "probes": counts per kind, the file, or why none ran


def run_probes_for(plan, kinds: list[str], run_uri: str, conn: S3Conn | None) -> RunProbes:
    """The probes this run scores: judge.probes of each judged kind; a probe set that cannot be read is said in
    run.json and in judge_health (no probes) instead of failing the evaluation. A resumed run that already scored
    its probes keeps them."""
    judge = plan.manifest.judge
    n = judge.probes if judge is not None else 0
    if n == 0 or not kinds:
        return RunProbes(note={"per_kind": n, "counts": {}, "off": judge is not None and n == 0})
    done = _scored(run_uri, conn)
    if done is not None:
        return RunProbes(note={"per_kind": n, "file": done, "kept": "scored by an earlier attempt of this run"})
    try:
        probes = select_probes(n, kinds)
    except (EvalsvcError, OSError) as e:
        return RunProbes(note={"per_kind": n, "counts": {}, "error": f"{type(e).__name__}: {e}"[:500]})
    counts = {k: sum(p.kind == k for p in probes) for k in sorted(set(kinds))}
    return RunProbes(probes, {"per_kind": n, "counts": counts})


def _scored(run_uri: str, conn: S3Conn | None) -> str | None:
    import pyarrow.fs as pafs

    from evalsvc.judge.probe_run import PROBES_DIR, PROBES_FILE
    from evalsvc.store.uri import filesystem, join

    uri = join(run_uri, PROBES_DIR, PROBES_FILE)
    fs, path = filesystem(uri, conn)
    try:
        return uri if fs.get_file_info(path).type == pafs.FileType.File else None
    except OSError:
        return None


def score(run: RunProbes, jcfg, run_uri: str, conn: S3Conn | None) -> None:
    """Judge the probes with the run's judge stage and store them; the outcome goes into run.note."""
    if not run.probes or jcfg.target is None:
        return
    table = run_probes(jcfg, run.probes)
    run.note["file"] = write_probes(table, run_uri, conn)
    run.note["judged"] = table.num_rows
