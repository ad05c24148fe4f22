"""cluster/launcher/gpu-vms.yaml passes Ray's own cluster-config validation and matches the k8s image's runtime.

`validate_config` is what `ray up` runs first (ray-schema.json plus node-type checks); nothing is launched.
"""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from rendered import REPO

LAUNCHER = REPO / "cluster" / "launcher" / "gpu-vms.yaml"
DOCKERFILE = REPO / "k8s" / "image" / "Dockerfile"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(LAUNCHER.read_text())


def validate(cfg: dict) -> None:
    from ray.autoscaler._private.util import validate_config

    validate_config(cfg)


def test_ray_validates_the_launcher_config(config):
    validate(copy.deepcopy(config))


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c["available_node_types"]["gpu_worker"]["resources"].__setitem__("GPU", "one"),
        lambda c: c.__setitem__("head_node_type", "missing"),
        lambda c: c["docker"].__setitem__("images", "typo"),  # docker forbids unknown keys
        lambda c: c.pop("provider"),
    ],
    ids=["gpu-not-integer", "unknown-head-type", "unknown-docker-key", "no-provider"],
)
def test_ray_rejects_a_broken_copy(config, breakage):
    broken = copy.deepcopy(config)
    breakage(broken)
    import jsonschema

    with pytest.raises((jsonschema.ValidationError, ValueError)):  # the schema, or Ray's node-type checks
        validate(broken)


def test_head_coordinates_and_gpu_workers_scale(config):
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}
    start = " ".join(config["head_start_ray_commands"])
    for flag in ("--head", "--num-cpus=0", "--num-gpus=0", "--dashboard-port=8265", "--autoscaling-config="):
        assert flag in start
    workers = [t for name, t in types.items() if name != config["head_node_type"]]
    assert workers and all(t["resources"]["GPU"] >= 1 and t["max_workers"] >= 1 for t in workers)
    assert config["max_workers"] >= max(t["max_workers"] for t in workers)


def test_same_image_and_install_as_the_k8s_gpu_image(config):
    text = DOCKERFILE.read_text()
    ray_version = re.search(r"^ARG RAY_VERSION=(\S+)", text, re.M).group(1)
    gpu_from = re.search(r"^FROM (\S+) AS gpu$", text, re.M).group(1).replace("${RAY_VERSION}", ray_version)
    assert config["docker"]["image"] == gpu_from
    setup = " ".join(config["setup_commands"])
    assert '[gpu]"' in setup and "-c /tmp/image-constraints.txt" in setup
    src = [remote for remote, local in config["file_mounts"].items() if local == "."]
    assert src and f"{src[0]}[gpu]" in setup, "setup installs the synced source tree"


def test_token_auth_on_every_node(config):
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    assert any(remote.endswith("/.ray/auth_token") for remote in config["file_mounts"])
