"""A node lost mid-run, as a pre-empted VM disappears (its raylet and every process on it killed), and a fresh node
joining: the run finishes, every planned record exists exactly once, and the run says what was redone.

One cluster for the module: a head (driver only), two engine workers, and a worker with the `judge_node` resource
the judge asks for. The first run places its two engine replicas on two nodes and loses one of them; the second
places the judge on its node and loses that; the third loses only its driver."""

from __future__ import annotations

import threading
import time

import pyarrow.dataset as ds
import pytest

from evalsvc.engines.serve_llm import REPLICA_NAME
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.control import ControlStore
from evalsvc.store.layout import RunLayout
from evalsvc.store.uri import S3Conn, filesystem, split_s3
from tests.cluster.conftest import ENGINE_CLASS, actors_of, joined_cluster
from tests.conftest import list_keys
from tests.pipeline.conftest import S3_REFS, env_vars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}
JUDGE_ENGINE = {**ENGINE, "max_model_len": 2048}  # the harm rubric and the request and the answer
WORKER_CPUS = 6


@pytest.fixture(scope="module")
def cluster3():
    with joined_cluster((None, None, None), worker_cpus=WORKER_CPUS, head_cpus=0,
                        worker_resources=({}, {}, {"judge_node": 1})) as (c, workers):  # fmt: skip
        yield c, workers, {w.node_id: res for w, res in zip(workers, ({}, {}, {"judge_node": 1}))}


def engine_manifest(model: str, uri: str) -> dict:
    """MCQ only (no judge): 8 questions × 4 strategies × 12 samples = 384 records, two engine replicas (enough work
    that the run is still going well after its first records land)."""
    return {
        "name": "node-loss",
        "models": [{"name": "tiny", "source": model, "engine_args": ENGINE, "replicas": 2}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard", "select": {"limit": 8}}],
        "strategies": ["basic", "cot", "safety", "cot_safety"],
        "sampling": {"max_tokens": 24, "n": 12, "temperature": 0.0},
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
        "judge": {"model": {"source": model, "engine_args": JUDGE_ENGINE, "placement": {"resources": {"judge_node": 1}}},
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


def record_files(s3, layout: RunLayout) -> list[str]:
    bucket, prefix = split_s3(layout.records)
    return [k for k in list_keys(s3, prefix, bucket) if k.endswith(".parquet")]


def raw_records(layout: RunLayout, conn: S3Conn) -> list[dict]:
    """Every row of every Parquet file, no deduplication: a record written twice shows as two rows."""
    fs, path = filesystem(layout.records, conn)
    table = ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive").to_table(
        columns=["record_key", "error", "judge_raw"]
    )
    return table.to_pylist()


def lose(c, workers: list, shapes: dict[str, dict], node_id: str):
    """Kill node `node_id` without warning (raylet and workers), and let a fresh node of the same shape (its custom
    resources, kept in `shapes`) join: an engine replica may have landed on the judge's node too."""
    victim = next(w for w in workers if w.node_id == node_id)
    c.remove_node(victim, allow_graceful=False)
    workers.remove(victim)
    resources = shapes.pop(node_id)
    fresh = c.add_node(num_cpus=WORKER_CPUS, resources=resources)
    workers.append(fresh)
    shapes[fresh.node_id] = resources
    return fresh


def judge_node(shapes: dict[str, dict]) -> str:
    return next(node for node, res in shapes.items() if res.get("judge_node"))


def test_losing_an_engine_node_mid_run_redoes_its_blocks_and_writes_each_record_once(cluster3, tiny_model, s3,
                                                                                      s3_uri):  # fmt: skip
    c, workers, shapes = cluster3
    with env_vars(s3.env()):
        m = validate_manifest(engine_manifest(str(tiny_model), s3_uri))
        conn, layout = S3Conn.from_options(m.output.s3), RunLayout(s3_uri, "engine-node-lost")
        control = ControlStore(conn)
        run = Background(m, RunOptions(address=c.address, run_id=layout.run_id))
        engines = wait_for(lambda: (e := actors_of(ENGINE_CLASS)) and len(e) == 2 and e, 600, run)
        wait_for(lambda: records_done(control, layout) > 0, 600, run)  # records are being written
        nodes = {a["Address"]["NodeID"] for a in engines.values()}
        assert len(nodes) == 2 and c.head_node.node_id not in nodes, f"replicas: 2 on nodes {sorted(nodes)}"
        lose(c, workers, shapes, sorted(nodes)[0])
        result = run.join(900)
        rows = raw_records(layout, conn)
    planned = 8 * 4 * 12
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
    c, workers, shapes = cluster3
    with env_vars(s3.env()):
        m = validate_manifest(judged_manifest(str(tiny_model), s3_uri))
        conn, layout = S3Conn.from_options(m.output.s3), RunLayout(s3_uri, "judge-node-lost")
        control = ControlStore(conn)
        # The judge stays up after the run: the next test's judge (the same config) is that app, on its fresh node.
        run = Background(m, RunOptions(address=c.address, run_id=layout.run_id, keep_judge=True))
        wait_for(lambda: records_done(control, layout) > 0, 600, run)  # the judge is up and judging
        judge_actors = actors_of(REPLICA_NAME)
        assert {a["Address"]["NodeID"] for a in judge_actors.values()} == {judge_node(shapes)}
        lose(c, workers, shapes, judge_node(shapes))
        result = run.join(1200)
        rows = raw_records(layout, conn)
    planned = 12 * 2 * 2
    assert result.state == "succeeded", result.info.get("error")
    assert len({r["record_key"] for r in rows}) == planned
    errors = [r["error"] for r in rows if r["error"] is not None]
    assert not errors, f"{len(errors)} record(s) with an error: {errors[:3]}"
    assert all(r["judge_raw"] is not None for r in rows)
    print(f"judge node lost: records planned {planned}, written {len(rows)}; retries {result.info.get('retries')}")


def test_a_driver_killed_mid_run_is_resumed_on_the_live_cluster_writing_only_what_is_missing(cluster3, tiny_model, s3,
                                                                                              s3_uri, tmp_path):  # fmt: skip
    """Only the driver dies (SIGKILL); the cluster and the judge's Serve app live on. The same run id again writes
    the missing records, through the judge app that outlived the killed driver (the judge the test above kept)."""
    import json
    import os
    import signal
    import subprocess
    import sys

    import yaml

    c, _, _ = cluster3
    data = judged_manifest(str(tiny_model), s3_uri)
    data["sampling"]["n"] = 4
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    layout = RunLayout(s3_uri, "driver-lost")
    cmd = [sys.executable, "-m", "evalsvc.cli.main", "run", str(path), "--address", c.address, "--run-id",
           layout.run_id, "--json"]  # fmt: skip
    with env_vars(s3.env()):
        conn = S3Conn.from_options(validate_manifest(data).output.s3)
        control = ControlStore(conn)
        proc = subprocess.Popen(cmd, env=dict(os.environ), stdout=subprocess.DEVNULL,
                                stderr=(tmp_path / "driver.log").open("wb"))  # fmt: skip
        end = time.monotonic() + 600
        while time.monotonic() < end and proc.poll() is None and not record_files(s3, layout):
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "driver.log").read_text(errors="replace")[-2000:]
        judge_before = set(actors_of(REPLICA_NAME))
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone: raylets, Serve and the judge app stay
        proc.wait()
        generated = max((c.get("generated", 0) for c in (control.get_json(layout.status_json) or {}).get("cells", [])),
                        default=0)  # fmt: skip
        time.sleep(5)  # a write task of the dead driver may still finish its file
        written = len({r["record_key"] for r in raw_records(layout, conn)})
        result = execute(validate_manifest(data), RunOptions(address=c.address, run_id=layout.run_id, keep_judge=True))
        rows = raw_records(layout, conn)
        judge_after = set(actors_of(REPLICA_NAME))
    planned = 12 * 2 * 4
    keys = [r["record_key"] for r in rows]
    assert result.state == "succeeded", result.info.get("error")
    assert len(set(keys)) == planned and len(keys) == planned
    assert 0 < written < planned
    assert result.info["reuse"]["already_in_run"] == written
    assert result.info["reuse"]["generations"] == planned - written  # only what was missing is generated again
    assert judge_before and judge_before <= judge_after, "the judge's replica did not outlive the driver"
    print(f"driver lost: planned {planned}, written before the kill {written}, generated before it {generated} "
          f"(redone ≤ {max(0, generated - written)}), regenerated {result.info['reuse']['generations']}; "
          f"{json.dumps(result.info.get('retries') or {})}")  # fmt: skip
