"""Fixtures of the pipeline tests: one local Ray per session (the real thing, with the CPU vLLM engine)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A private local Ray for the whole session (evalsvc's own connect(), as `evalsvc run` uses it)."""
    import ray

    from evalsvc.pipeline.cluster import connect

    connect(None)
    yield ray
    ray.shutdown()
