"""Fixtures of the engine tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def one_worker_config(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """The parts of a VllmConfig that choosing the executor and the worker's OpenMP settings read, for a one-worker
    engine that vLLM's CPU platform gave its multiprocess executor; set in a one-CPU Ray actor (OMP_NUM_THREADS=1)
    with evalsvc's CPU binding."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-1")
    parallel = SimpleNamespace(distributed_executor_backend="mp", world_size=1, local_world_size=1,
                               data_parallel_rank_local=0, _api_process_count=1)  # fmt: skip
    return SimpleNamespace(parallel_config=parallel, kv_transfer_config=None)
