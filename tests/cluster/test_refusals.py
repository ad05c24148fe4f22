"""Refused up front on a real multi-node cluster whose worker looks like another host (a 127.0.0.2 raylet): a local
output folder, and GPUs no node has; decided from Ray's node list before any engine actor exists."""

from __future__ import annotations

import time

import pytest

from evalsvc.errors import UserError
from evalsvc.manifest.load import validate_manifest
from evalsvc.pipeline.cluster import cluster_view
from evalsvc.pipeline.preflight import check_cluster
from evalsvc.pipeline.run import RunOptions, execute
from tests.cluster.conftest import ENGINE_CLASS, joined_cluster
from tests.pipeline.conftest import S3_REFS, env_vars, tiny_mcq_manifest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def split_cluster():
    with joined_cluster(("127.0.0.2",), worker_cpus=4) as c:
        yield c


def fixed_view(deadline_s: float = 30.0):
    """The cluster view once Ray's monitor has reported (before that, nothing is known and nothing refused)."""
    end = time.monotonic() + deadline_s
    view = cluster_view()
    while view.node_groups is None and time.monotonic() < end:
        time.sleep(1)
        view = cluster_view()
    return view


def no_engine_actor_ever() -> bool:
    from ray._private import state

    return not any(ENGINE_CLASS in a["ActorClassName"] for a in state.actors().values())


def test_the_view_sees_two_hosts_and_no_autoscaler(split_cluster):
    view = fixed_view()
    assert {n.ip for n in view.nodes} >= {"127.0.0.2", view.driver_ip} and not view.one_host
    assert view.node_groups == ()  # only Ray's read-only monitor: a fixed cluster


def test_a_local_output_folder_is_refused_before_any_engine_loads(split_cluster, tiny_model, tmp_path):
    c, _ = split_cluster
    fixed_view()
    manifest = validate_manifest(tiny_mcq_manifest("refuse", tiny_model, str(tmp_path / "out"), ["basic"], 1))
    with pytest.raises(UserError) as e:
        execute(manifest, RunOptions(address=c.address))
    text = "\n".join(e.value.lines())
    assert e.value.exit_code == 2
    assert "output.uri: " in text and "127.0.0.2" in text and "output.shared_filesystem: true" in text
    assert "models.0.source: " in text  # the tiny model's folder is local too
    assert no_engine_actor_ever()


def test_shared_filesystem_lets_local_paths_through(split_cluster, tiny_model, tmp_path):
    doc = tiny_mcq_manifest("shared", tiny_model, str(tmp_path / "out"), ["basic"], 1)
    doc["output"]["shared_filesystem"] = True
    fixed_view()
    check_cluster(validate_manifest(doc), str(tmp_path / "out"))  # no error: the user asserts the mount


def test_gpus_no_node_has_are_refused_at_once(split_cluster, tiny_model, s3, s3_uri):
    c, _ = split_cluster
    doc = tiny_mcq_manifest("gpus", tiny_model, s3_uri, ["basic"], 1)
    doc["models"][0]["source"] = "org/some-model"  # a hub id: no local path in the way
    doc["resources"]["gpus_per_replica"] = 1
    doc["output"]["s3"] = S3_REFS
    fixed_view()
    with env_vars(s3.env()), pytest.raises(UserError, match=r"resources\.gpus_per_replica: one engine replica of models\.0"):
        execute(validate_manifest(doc), RunOptions(address=c.address))
    assert no_engine_actor_ever()
