"""Faults mid-run: an engine actor killed and the S3 server down for 30 s in one run (Ray restarts the actor,
writes retry), and an outage beyond the retry budget (a clear failure, records already written stay readable)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from evalsvc.errors import SystemError_
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.run import RunOptions, execute
from evalsvc.store.devs3 import DevS3
from evalsvc.store.layout import RunLayout
from evalsvc.store.read import read_records
from evalsvc.store.uri import S3Conn
from tests.pipeline.conftest import tiny_mcq_manifest

pytestmark = pytest.mark.slow

ITEMS, STRATEGIES, SAMPLES = 20, ["basic", "safety"], 4
TOTAL = ITEMS * len(STRATEGIES) * SAMPLES


def mcq_manifest(model_dir, uri: str) -> dict:
    return tiny_mcq_manifest("faults", model_dir, uri, STRATEGIES, SAMPLES)


class Background:
    """Run `execute` in a thread; the test injects the fault meanwhile."""

    def __init__(self, manifest, run_id: str):
        self.result, self.error = None, None
        self.thread = threading.Thread(target=self._go, args=(manifest, run_id), daemon=True)
        self.thread.start()

    def _go(self, manifest, run_id):
        try:
            self.result = execute(manifest, RunOptions(run_id=run_id))
        except BaseException as e:  # handed to the test
            self.error = e

    def join(self, timeout: float = 900):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not finish"


def _wait_for_records(layout: RunLayout, conn, run: Background, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.thread.is_alive():
        try:
            if read_records(layout.records, conn, columns=("record_key",)).num_rows:
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no record was written while the run went on (run error: {run.error!r})")


def _exact(layout: RunLayout, conn) -> list[str]:
    keys = read_records(layout.records, conn, columns=("record_key",))["record_key"].to_pylist()
    assert len(keys) == len(set(keys)), "duplicate record keys"
    return keys


@pytest.fixture
def private_s3(tmp_path):
    with DevS3(tmp_path / "s3") as server:
        server.create_bucket("faults")
        old = {k: os.environ.get(k) for k in server.env()}
        os.environ.update(server.env())
        yield server
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def test_engine_actor_killed_and_s3_down_for_30s_mid_run(ray_local, tiny_model, private_s3):
    """Two faults in one run (one engine load instead of two): the engine actor is killed (Ray restarts it and
    redoes its batch), and while it reloads the S3 server is down for 30 s (the writes retry). Every planned
    record is written exactly once."""
    from ray._private import state

    layout = RunLayout("s3://faults/outage", "kill-and-outage")
    conn = S3Conn.from_options(None)
    run = Background(validate_manifest(mcq_manifest(tiny_model, layout.root)), layout.run_id)
    _wait_for_records(layout, conn, run)
    engines = [a for a in state.actors().values()
               if "vLLMEngineStageUDF" in a["ActorClassName"] and a["State"] == "ALIVE"]  # fmt: skip
    assert run.thread.is_alive() and engines, "the run finished before the faults could be injected"
    os.kill(engines[0]["Pid"], 9)
    private_s3.stop()
    time.sleep(30)
    private_s3.restart()
    run.join()
    assert run.error is None, run.error
    assert len(_exact(layout, conn)) == TOTAL
    assert (run.result.info.get("retries") or {}).get("engine_restarts", 0) >= 1, run.result.info.get("retries")


def test_s3_outage_beyond_the_retry_budget_fails_clearly_with_data_intact(ray_local, tiny_model, private_s3):
    from ray.data import DataContext

    ctx = DataContext.get_current()
    saved = ctx.retried_io_errors
    ctx.retried_io_errors = []  # a zero retry budget for Ray Data's writes, so the outage outlasts it at once
    try:
        layout = RunLayout("s3://faults/outage", "outage-long")
        conn = S3Conn.from_options(None)
        run = Background(validate_manifest(mcq_manifest(tiny_model, layout.root)), layout.run_id)
        _wait_for_records(layout, conn, run)
        before = len(_exact(layout, conn))
        private_s3.stop()
        run.join()
    finally:
        ctx.retried_io_errors = saved
    assert isinstance(run.error, SystemError_), run.error
    assert "failed" in str(run.error)
    private_s3.restart()
    after = _exact(layout, conn)  # every object that was published is a whole, readable Parquet file
    assert before <= len(after) < TOTAL
