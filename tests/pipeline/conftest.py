"""Fixtures of the pipeline tests: one local Ray for their modules (the real thing, with the CPU vLLM engine)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@pytest.fixture(scope="session")
def _ray_session():
    """Shuts the pipeline tests' local Ray down when the session ends (whichever module started it last)."""
    yield
    import ray

    ray.shutdown()


@pytest.fixture(scope="module")
def ray_local(_ray_session):
    """A private local Ray shared by the pipeline modules (evalsvc's own connect(), as `evalsvc run` uses it): the
    first module starts it, later ones find it up; started again after a module that made a cluster of its own."""
    import ray

    from evalsvc.pipeline.cluster import connect

    connect(None)
    yield ray


def tiny_mcq_manifest(name: str, model_dir, uri: str, strategies: list[str], samples: int) -> dict:
    """An MCQ-only grid (no judge) on the tiny model: enough rows that a fault can land mid-run."""
    return {
        "name": name,
        "models": [{"name": "tiny", "source": str(model_dir),
                    "engine_args": {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True}}],
        "benchmarks": [{"name": "mcq", "dataset": "medguard"}],
        "strategies": strategies,
        "sampling": {"max_tokens": 32, "n": samples, "temperature": 0.0},
        "output": {"uri": uri, "cache": False},
        "resources": {"batch_size": 8, "max_concurrent_batches": 1},
    }


def engine_actors() -> set[str]:
    """Ids of every vLLM engine actor this Ray has ever created (alive or dead), from the GCS actor table."""
    from ray._private import state  # the public state API needs the dashboard, which local runs leave off

    return {aid for aid, a in state.actors().items() if "vLLMEngineStageUDF" in a["ActorClassName"]}


# The S3 settings of test manifests: references only, resolved from the DevS3 env the fixtures export.
S3_REFS = {"access_key_id": "${AWS_ACCESS_KEY_ID}", "secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
           "endpoint_url": "${AWS_ENDPOINT_URL_S3}"}  # fmt: skip


@contextmanager
def env_vars(env: dict[str, str]) -> Iterator[None]:
    """Export `env` for the block (Ray workers started inside see it), then restore what was there."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
