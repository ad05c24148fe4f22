"""Judge health in a run: pick the known-answer probes of the run's judged kinds before anything loads, and score
them through the judge stage as soon as the judge is up, beside the grid, into runs/<id>/probes/ (never among the
records). The calibration slice is scored the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa

from evalsvc.errors import EvalsvcError
from evalsvc.judge.probe_run import run_probes, select_probes, write_probes
from evalsvc.judge.probes import Probe
from evalsvc.store.uri import S3Conn


@dataclass
class RunProbes:
    probes: list[Probe] = field(default_factory=list)
    note: dict = field(default_factory=dict)  # run.json "probes": counts per kind, the file, or why none ran


def run_probes_for(plan, kinds: list[str], run_uri: str, conn: S3Conn | None, cache: list[str] = (),
                   judge_sig: dict[str, tuple[str, str, str]] | None = None) -> RunProbes:  # fmt: skip
    """The probes this run scores: judge.probes of each judged kind; a probe set that cannot be read is said in
    run.json and in judge_health (no probes) instead of failing the evaluation. A resumed run that already scored
    its probes keeps them; an earlier run whose records this run reuses (`cache`: their records folders) and whose
    judge scored the same probes with the same rubrics (`judge_sig`, as for cached judgements) lends its scores."""
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
    for source in reversed(cache):  # newest run first (run ids begin with their start time)
        lent = _lent(probes, source, conn, judge_sig or {})
        if lent is not None:
            from evalsvc.judge.probe_run import write_probes

            table = lent.set_column(lent.schema.get_field_index("run_id"), "run_id",
                                    pa.array([run_uri.rstrip("/").rsplit("/", 1)[-1]] * lent.num_rows))  # fmt: skip
            file = write_probes(table, run_uri, conn)
            return RunProbes(note={"per_kind": n, "counts": counts, "file": file, "reused_from": _probes_uri(source)})
    return RunProbes(probes, {"per_kind": n, "counts": counts})


def _probes_uri(records_uri: str) -> str:
    from evalsvc.judge.probe_run import PROBES_DIR, PROBES_FILE
    from evalsvc.store.uri import join

    return join(records_uri.rstrip("/").rsplit("/", 1)[0], PROBES_DIR, PROBES_FILE)


def _lent(probes: list[Probe], records_uri: str, conn: S3Conn | None, sig: dict) -> pa.Table | None:
    """The earlier run's judgements of exactly these probes when every one was judged without error by the same
    judge and rubric version (its single judge's or jury's row: judge_model, rubric_id, rubric_version); else None."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from evalsvc.judge.core import SINGLE_JUDGE
    from evalsvc.judge.jury import JURY_VOTER
    from evalsvc.store.uri import filesystem

    fs, path = filesystem(_probes_uri(records_uri), conn)
    try:
        table = pq.read_table(path, filesystem=fs)
    except (OSError, pa.ArrowInvalid):
        return None
    wanted = {p.probe_id: p.kind for p in probes}
    table = table.filter(pc.is_in(table["probe_id"], pa.array(list(wanted))))
    verdicts = {r["probe_id"]: r for r in table.to_pylist() if r["juror"] in (SINGLE_JUDGE, JURY_VOTER)}
    if set(verdicts) != set(wanted) or any(e is not None for e in table["error"].to_pylist()):
        return None
    same = all(sig.get(kind) == (verdicts[pid]["judge_model"] or "", verdicts[pid]["rubric_id"] or "",
                                 verdicts[pid]["rubric_version"] or "") for pid, kind in wanted.items())  # fmt: skip
    return table if same else None


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


class JudgedApart:
    """The judge's work outside the grid (probes, calibration slice), done in a driver thread once the judge's app
    is up, while candidates generate: the run waits for it only after its grid (`join`, which raises what failed).

    `startup_wait` blocks until the apps are up (raising a failed start); `work` calls the judge. A run that ends
    early `stop`s it: work not yet begun is skipped, and nothing waits for the thread."""

    def __init__(self, startup_wait: Callable[[], None], work: Callable[[], None]):
        self._wait, self._work = startup_wait, work
        self._stopped = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evalsvc-judged-apart", daemon=True)

    def start(self) -> JudgedApart:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._wait()
            if not self._stopped.is_set():
                self._work()
        except BaseException as e:  # noqa: BLE001 - re-raised by join() in the run's own thread
            self.error = e

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stopped.set()
