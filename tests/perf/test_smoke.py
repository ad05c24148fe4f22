"""A tiny end-to-end run of the null-engine suites on a real local Ray (and DevS3): the plumbing, never the timings."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from evalsvc.pipeline.cluster import connect

    started = connect(None)
    yield
    if started:
        ray.shutdown()


def test_memory_suite_measures_each_size(local_ray, tmp_path):
    from evalsvc.perf import memory

    result = memory.run(sizes=(40, 200), out=tmp_path)
    assert [r["records"] for r in result.rows] == [40, 200]
    for r in result.rows:
        assert r["wall_s"] > 0 and r["rss_peak_mib"] >= r["rss_start_mib"] > 0
    assert result.ratios["records, largest ÷ smallest"] == 5.0
    assert not (tmp_path / "memory-work").exists()  # the records it wrote are cleaned up


def test_overhead_suite_writes_every_record_to_s3(local_ray, tmp_path):
    from evalsvc.perf import overhead

    result = overhead.run(records=400, repeats=1, out=tmp_path)
    assert [r["records"] for r in result.rows] == [400, 400]
    assert all(len(r["walls_s"].split()) == 1 for r in result.rows)
    assert "records read back from S3 after the evalsvc run: 400 (expected 400)" in result.notes
    assert result.ratios["evalsvc records/s ÷ bare Ray Data records/s (best of each)"] > 0
