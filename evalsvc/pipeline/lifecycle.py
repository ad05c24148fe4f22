"""One lifecycle for every run evalsvc starts — the grid, guard-only, rescore and judge calibration.

Output checked writable → run folder → Ray → run.json "running" + live status.json → work → a final state that
respects `evalsvc cancel` → status and run.json written once more → every Serve app the run deployed removed.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from evalsvc.manifest.schema import Manifest
from evalsvc.pipeline.cluster import connect
from evalsvc.pipeline.progress import StatusPoller, now, start_counter
from evalsvc.store.control import ControlStore
from evalsvc.store.documents import RunDoc, StatusDoc
from evalsvc.store.layout import RunLayout
from evalsvc.store.uri import S3Conn, is_s3

log = logging.getLogger(__name__)
Counts = dict[str, list[int]]  # cell id -> [done, errors, parse failures]
REPLICAS_EVERY_S = 10.0  # how often a live status re-reads where the model replicas are


@dataclass(frozen=True)
class Output:
    """Where a run writes: the output root (checked writable) and how to reach it."""

    conn: S3Conn
    root: str
    control: ControlStore


def open_output(manifest: Manifest, override: str | None = None) -> Output:
    """The output root of `manifest` (or `override`), probed with a write before any work starts."""
    conn = S3Conn.from_options(manifest.output.s3)
    root = override or manifest.output.uri
    if not is_s3(root):
        root = str(Path(root).expanduser().resolve())
    control = ControlStore(conn)
    control.check_writable(root)
    return Output(conn, root, control)


def new_run_id(name: str) -> str:
    return f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class Run:
    """A run in progress: its folder, its run.json, its live status, and what to tear down when it ends."""

    out: Output | None
    layout: RunLayout | None
    doc: RunDoc | None
    local_ray: bool = False
    status_of: Callable[[Counts, str], StatusDoc] | None = None
    on_status: Callable[[dict], None] | None = None
    counter: object = None  # the progress actor (None without a status)
    closers: list[Callable[[], None]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)  # UNIX time the run's timeline counts from
    timeline: dict[str, float] = field(default_factory=dict)  # event → seconds since started_at
    engines_before: frozenset[str] = frozenset()  # engine actors that existed before the run (not its own)
    replicas: list[dict] | None = None  # where the model replicas are, as last read from Ray's actor table
    replicas_read: float = 0.0  # monotonic time of that read
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def progress_actor(self) -> str | None:
        return f"evalsvc-progress-{self.layout.run_id}" if self.counter is not None and self.layout else None

    def mark(self, event: str, at: float | None = None) -> None:
        """Note when `event` happened (now, or UNIX time `at`) on the run's timeline; the first time counts."""
        self.timeline.setdefault(event, round((at if at is not None else time.time()) - self.started_at, 2))

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call `fn` when the run ends, whatever its state (last registered, first called)."""
        self.closers.append(fn)

    def save(self) -> None:
        if self.out is not None and self.layout is not None and self.doc is not None:
            self.out.control.put_json(self.layout.run_json, self.doc.to_json())

    def publish(self, counts: Counts, state: str = "running") -> dict | None:
        if self.status_of is None or self.out is None or self.layout is None:
            return None
        status = self.status_of(counts, state)
        if state != "running":
            status.retries = self.retries() or None
        elif self.counter is not None:
            status.replicas = self.where_replicas()
        doc = status.to_json()
        with self._lock:
            self.out.control.put_json(self.layout.status_json, doc)
        if self.on_status:
            self.on_status(doc)
        return doc

    def counts(self) -> Counts:
        if self.counter is None:
            return {}
        import ray

        try:
            return ray.get(self.counter.snapshot.remote(), timeout=10)
        except Exception as e:  # noqa: BLE001 - progress is informative: the records are the truth
            log.warning("progress: %s", type(e).__name__)
            return {}

    def where_replicas(self, every_s: float = REPLICAS_EVERY_S) -> list[dict] | None:
        """The replicas' nodes, read from Ray's actor table at most every `every_s` once there are some (the table
        holds every actor of the cluster); until the first replica exists, at every status."""
        if self.replicas is None or time.monotonic() - self.replicas_read >= every_s:
            self.replicas, self.replicas_read = _replicas(), time.monotonic()
        return self.replicas

    def retries(self) -> dict[str, int]:
        """Work redone after faults: engine actors restarted, blocks redone, judge calls that waited for a lost
        replica (what was never needed is left out)."""
        if self.counter is None:
            return {}
        import ray

        from evalsvc.pipeline.release import engine_actors_ever

        try:
            out = dict(ray.get(self.counter.faults.remote(), timeout=10))
            restarts = sum(n for aid, n in engine_actors_ever().items() if aid not in self.engines_before)
        except Exception:  # noqa: BLE001 - informative: the run's outcome must not depend on it
            return {}
        if restarts:
            out["engine_restarts"] = restarts
        return {k: v for k, v in sorted(out.items()) if v}

    def cancelled(self) -> bool:
        """`evalsvc cancel` marks run.json; the stop signal's SystemExit must not turn that into "failed"."""
        if self.out is None or self.layout is None:
            return False
        return (self.out.control.get_json(self.layout.run_json) or {}).get("state") == "cancelled"


@contextmanager
def lifecycle(
    address: str | None,
    *,
    out: Output | None = None,
    layout: RunLayout | None = None,
    doc: RunDoc | None = None,
    status_of: Callable[[Counts, str], StatusDoc] | None = None,
    on_status: Callable[[dict], None] | None = None,
    needs_ray: bool = True,
    started_at: float | None = None,
) -> Iterator[Run]:
    """Run the body inside the lifecycle; the final state and documents are written however the body ends.

    `started_at` (UNIX time; default now) is where the run's timeline starts, e.g. before the plan was built."""
    run = Run(out, layout, doc, status_of=status_of, on_status=on_status, started_at=started_at or time.time())
    run.local_ray = connect(address) if needs_ray else False
    run.mark("ray_up")
    if status_of is not None and layout is not None and needs_ray:
        from evalsvc.pipeline.release import engine_actors_ever

        run.counter = start_counter(f"evalsvc-progress-{layout.run_id}")
        run.engines_before = frozenset(engine_actors_ever())
    run.save()
    run.publish({})
    t0, state, error = time.monotonic(), "failed", None
    try:
        with StatusPoller(run.counter, run.publish) if run.counter is not None else _nothing():
            yield run
        state = "succeeded"
    except Exception as e:
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
        raise
    finally:
        _finish(run, state, error, time.monotonic() - t0)


def _finish(run: Run, state: str, error: str | None, wall_s: float) -> None:
    try:
        state = "cancelled" if run.cancelled() else state
        run.publish(run.counts(), state)
        retries = run.retries()
        for event, at in sorted(_stage_events(run).items(), key=lambda kv: kv[1]):
            run.mark(event, at)
        run.mark("end")
        if run.doc is not None:
            run.doc = run.doc.model_copy(
                update={"state": state, "finished": now(), "wall_s": round(wall_s, 1),
                        "error": error if state == "failed" else None, "timeline": dict(run.timeline),
                        "retries": retries or None}
            )  # fmt: skip
            run.save()
    finally:
        for close in reversed(run.closers):
            try:
                close()
            except Exception as e:  # noqa: BLE001 - one app that will not go must not hide the run's own outcome
                log.warning("teardown: %s: %s", type(e).__name__, e)


def _stage_events(run: Run) -> dict[str, float]:
    """When the pipeline's stages first saw answers and records (UNIX times, from the progress actor)."""
    if run.counter is None:
        return {}
    import ray

    try:
        return ray.get(run.counter.events.remote(), timeout=10)
    except Exception:  # noqa: BLE001 - the timeline is informative; the run's outcome must not depend on it
        return {}


def _replicas() -> list[dict] | None:
    from evalsvc.pipeline.cluster import replica_nodes

    try:
        return replica_nodes() or None
    except Exception:  # noqa: BLE001 - informative: a status must not fail on it
        return None


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
