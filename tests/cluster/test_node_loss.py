"""A node lost mid-run, as a pre-empted VM disappears (its raylet and every process on it killed), and a fresh node
joining: the run finishes, every planned record exists exactly once, and the run says what was redone.

One cluster for the module: a head (driver only), two engine workers, and a worker with the `judge_node` resource
the judge asks for. The first run loses the node of one of its two engine replicas; the second loses the judge's."""

from __future__ import annotations

import threading
import time

import pyarrow.dataset as ds
import pytest

from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.uri import S3Conn, filesystem
from tests.cluster.conftest import ENGINE_CLASS, actors_of, joined_cluster
from tests.pipeline.conftest import S3_REFS, env_vars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
WORKER_CPUS = 6


@pytest.fixture(scope="module")
def cluster3():
    with joined_cluster((None, None, None), worker_cpus=WORKER_CPUS, head_cpus=0,
                        worker_resources=({}, {}, {"judge_node": 1})) as (c, workers):  # fmt: skip
        yield c, workers, {"judge": workers[2].node_id}


def engine_manifest(model: str, uri: str) -> dict:
    """MCQ only (no judge): 8 questions × 4 strategies × 8 samples = 256 records, two engine replicas."""
    return {
        "name": "node-loss",
        "models": [{"name": "tiny", "source": model, "engine_args": ENGINE, "replicas": 2}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": 8}}],
        "strategies": ["basic", "cot", "safety", "combined"],
        "sampling": {"max_tokens": 24, "n": 8, "temperature": 0.0},
        "output": {"uri": uri, "s3": S3_REFS, "cache": False},
        "resources": {"batch_size": 8, "max_concurrent_batches": 1},
    }


def judged_manifest(model: str, uri: str) -> dict:
    """MedSafetyBench requests judged by a judge that must run on the `judge_node` worker."""
    return {
        "name": "judge-loss",
        "models": [{"name": "tiny", "source": model, "engine_args": ENGINE}],
        "benchmarks": [{"name": "msb", "dataset": "medsafetybench", "select": {"limit": 12}}],
        "strategies": ["basic", "safety"],
        "sampling": {"max_tokens": 16, "n": 2, "temperature": 0.0},
        "judge": {"model": {"source": model, "engine_args": ENGINE, "placement": {"resources": {"judge_node": 1}}},
                  "max_tokens": 24, "concurrency": 4, "probes": 0},  # fmt: skip
        "output": {"uri": uri, "s3": S3_REFS, "cache": False},
        "resources": {"batch_size": 4, "max_concurrent_batches": 1},
    }


class Background:
    """`execute` in a thread, as the driver of a long run; the test thread plays the cloud provider meanwhile."""

    def __init__(self, manifest, opts: RunOptions):
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._run, args=(manifest, opts), daemon=True)
        self.thread.start()

    def _run(self, manifest, opts) -> None:
        try:
            self.result = execute(manifest, opts)
        except BaseException as e:  # noqa: BLE001 - re-raised by the test
            self.error = e

    def join(self, timeout_s: float):
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"the run did not end within {timeout_s} s"
        if self.error is not None:
            raise self.error
        return self.result


def wait_for(what, timeout_s: float, run: Background, poll_s: float = 0.5):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and run.thread.is_alive():
        found = what()
        if found:
            return found
        time.sleep(poll_s)
    raise AssertionError(f"not seen within {timeout_s} s (run still going: {run.thread.is_alive()})")


def records_done(control: ControlStore, layout: RunLayout) -> int:
    return (control.get_json(layout.status_json) or {}).get("done", 0)


def raw_records(layout: RunLayout, conn: S3Conn) -> list[dict]:
    """Every row of every Parquet file, no deduplication: a record written twice shows as two rows."""
    fs, path = filesystem(layout.records, conn)
    table = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive").to_table(
        columns=["record_key", "error", "judge_raw"]
    )
    return table.to_pylist()


def lose(c, workers: list, node_id: str, resources: dict | None = None):
    """Kill node `node_id` without warning (raylet and workers), and let a fresh node of the same shape join."""
    victim = next(w for w in workers if w.node_id == node_id)
    c.remove_node(victim, allow_graceful=False)
    workers.remove(victim)
    fresh = c.add_node(num_cpus=WORKER_CPUS, resources=resources or {})
    workers.append(fresh)
    return fresh


def test_losing_an_engine_node_mid_run_redoes_its_blocks_and_writes_each_record_once(cluster3, tiny_model, s3,
                                                                                      s3_uri):  # fmt: skip
    c, workers, _ = cluster3
    with env_vars(s3.env()):
        m = validate_manifest(engine_manifest(str(tiny_model), s3_uri))
        conn, layout = S3Conn.from_options(m.output.s3), RunLayout(s3_uri, "engine-node-lost")
        control = ControlStore(conn)
        run = Background(m, RunOptions(address=c.address, run_id=layout.run_id))
        wait_for(lambda: records_done(control, layout) > 0, 600, run)  # records are being written
        engines = wait_for(lambda: actors_of(ENGINE_CLASS), 60, run)
        node = next(iter(engines.values()))["Address"]["NodeID"]
        lose(c, workers, node)
        result = run.join(900)
        rows = raw_records(layout, conn)
    planned = 8 * 4 * 8
    keys = [r["record_key"] for r in rows]
    assert result.state == "succeeded", result.info.get("error")
    assert len(set(keys)) == planned, f"{len(set(keys))} distinct records of {planned} planned"
    assert len(keys) == planned, f"{len(keys) - len(set(keys))} record(s) written twice"
    retries = result.info.get("retries") or {}
    assert retries.get("engine_restarts", 0) >= 1, retries
    assert result.status.get("retries") == retries and result.summary.get("retries") == retries
    print(f"engine node lost: records planned {planned}, written {len(keys)}, distinct {len(set(keys))}; "
          f"retries {retries}")  # fmt: skip


def test_losing_the_judge_node_mid_run_waits_for_the_judge_and_judges_every_record(cluster3, tiny_model, s3,
                                                                                   s3_uri):  # fmt: skip
    c, workers, nodes = cluster3
    with env_vars(s3.env()):
        m = validate_manifest(judged_manifest(str(tiny_model), s3_uri))
        conn, layout = S3Conn.from_options(m.output.s3), RunLayout(s3_uri, "judge-node-lost")
        control = ControlStore(conn)
        run = Background(m, RunOptions(address=c.address, run_id=layout.run_id))
        wait_for(lambda: records_done(control, layout) > 0, 600, run)  # the judge is up and judging
        judge_actors = actors_of("LLMServer")
        assert {a["Address"]["NodeID"] for a in judge_actors.values()} == {nodes["judge"]}
        nodes["judge"] = lose(c, workers, nodes["judge"], {"judge_node": 1}).node_id
        result = run.join(1200)
        rows = raw_records(layout, conn)
    planned = 12 * 2 * 2
    assert result.state == "succeeded", result.info.get("error")
    assert len({r["record_key"] for r in rows}) == planned
    errors = [r["error"] for r in rows if r["error"] is not None]
    assert not errors, f"{len(errors)} record(s) with an error: {errors[:3]}"
    assert all(r["judge_raw"] is not None for r in rows)
    print(f"judge node lost: records planned {planned}, written {len(rows)}; retries {result.info.get('retries')}")
