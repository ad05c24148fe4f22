"""k8s/image/Dockerfile (not built here): its stages, base images and COPY sources agree with the project.

Checks that need no Docker: every COPY source exists, the extras it installs exist, the Ray version matches.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from rendered import REPO

DOCKERFILE = REPO / "k8s" / "image" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_stages_build_from_rays_images_for_the_pinned_ray():
    args = dict(a.split("=", 1) for i, a in instructions() if i == "ARG")
    ray_pin = next(d for d in pyproject()["project"]["dependencies"] if d.startswith("ray[")).split("==")[1]
    assert args["RAY_VERSION"] == ray_pin
    stages = {a.split()[-1]: a.split()[0] for i, a in instructions() if i == "FROM"}
    assert stages == {
        "gpu": "rayproject/ray-llm:${RAY_VERSION}-py311-cu128",
        "cpu": "rayproject/ray:${RAY_VERSION}-py311-cpu",
    }


def test_every_copy_source_exists_in_the_repository():
    copies = [a for i, a in instructions() if i == "COPY"]
    assert copies
    for args in copies:
        *sources, _dest = [w for w in args.split() if not w.startswith("--")]
        for src in sources:
            assert (REPO / src).exists(), f"COPY {src}: not in the repository"


@pytest.mark.parametrize("extra", ["gpu", "cpu"])
def test_installed_extras_exist(extra):
    runs = " ".join(a for i, a in instructions() if i == "RUN")
    assert f'".[{extra}]"' in runs
    assert extra in pyproject()["project"]["optional-dependencies"]


def test_package_data_the_wheel_needs_is_copied():
    # pyproject force-includes these folders into the wheel; without them `pip install .` fails.
    forced = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"].get("force-include", {})
    copied = {w for i, a in instructions() if i == "COPY" for w in a.split()}
    for folder in forced:
        assert folder in copied, f"{folder} is force-included in the wheel but not copied into the image"
