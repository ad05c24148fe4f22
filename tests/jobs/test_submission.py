"""What `evalsvc submit` sends: entrypoint, runtime_env and metadata per install mode, the staged working_dir,
and the promise that no credential value travels with a job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalsvc import __version__
from evalsvc.errors import UserError
from evalsvc.jobs.submission import MANIFEST_NAME, build_submission, check_run_id, normalize_root
from evalsvc.manifest.load import load_manifest

REPO = Path(__file__).resolve().parents[2]
SECRETS = {"AWS_ACCESS_KEY_ID": "AKIAJOBSTESTKEY0001", "AWS_SECRET_ACCESS_KEY": "jobs-test-secret-6f1b9c2e",
           "AWS_ENDPOINT_URL_S3": "http://10.1.2.3:8333"}


@pytest.fixture
def manifest(write_manifest, grid, monkeypatch: pytest.MonkeyPatch) -> Path:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    return write_manifest(grid("/models/tiny", "s3://evalsvc-test/root/"))


def build(manifest: Path, staging: Path, **kw):
    return build_submission(manifest, load_manifest(manifest), staging, "r-1", **kw)


def test_default_pins_this_version_from_pip(manifest: Path, tmp_path: Path) -> None:
    sub = build(manifest, tmp_path / "wd")
    assert sub.entrypoint == f"evalsvc run {MANIFEST_NAME} --run-id r-1 --output s3://evalsvc-test/root"
    assert sub.runtime_env == {"working_dir": str(tmp_path / "wd"), "pip": [f"evalsvc=={__version__}"]}
    assert sorted(p.name for p in (tmp_path / "wd").iterdir()) == [MANIFEST_NAME]
    assert (tmp_path / "wd" / MANIFEST_NAME).read_bytes() == manifest.read_bytes()
    assert sub.metadata == {"evalsvc_run_id": "r-1", "evalsvc_output": "s3://evalsvc-test/root", "evalsvc_manifest": "jobs-tiny",
                            "evalsvc_version": __version__, "evalsvc_install": "pip"}
    assert sub.layout.uri == "s3://evalsvc-test/root/runs/r-1"


def test_no_pin_uses_the_clusters_evalsvc(manifest: Path, tmp_path: Path) -> None:
    sub = build(manifest, tmp_path / "wd", pin=False)
    assert "pip" not in sub.runtime_env
    assert sub.entrypoint.startswith("evalsvc run ")
    assert sub.metadata["evalsvc_install"] == "cluster"


def test_working_dir_uploads_the_source_and_runs_the_module(manifest: Path, tmp_path: Path) -> None:
    wd = tmp_path / "wd"
    sub = build(manifest, wd, source=REPO, output="s3://evalsvc-test/other")
    assert sub.entrypoint == f"python -m evalsvc.cli.main run {MANIFEST_NAME} --run-id r-1 --output s3://evalsvc-test/other"
    assert "pip" not in sub.runtime_env
    assert (wd / "evalsvc" / "cli" / "main.py").is_file() and (wd / "pyproject.toml").is_file()
    assert any((wd / "judges").iterdir())  # the rubrics, found beside the package as in a checkout
    assert not (wd / "tests").exists() and not (wd / ".venv").exists()
    assert not list(wd.rglob("__pycache__")) and not list(wd.rglob("*.pyc"))
    assert sub.metadata["evalsvc_install"] == "working-dir"


def test_no_secret_value_travels_with_a_job(manifest: Path, tmp_path: Path) -> None:
    for i, kw in enumerate([{}, {"pin": False}, {"source": REPO}]):
        wd = tmp_path / f"wd{i}"
        sub = build(manifest, wd, **kw)
        sent = [sub.entrypoint, json.dumps(sub.runtime_env), json.dumps(sub.metadata)]
        sent += [p.read_bytes().decode("utf-8", "replace") for p in wd.rglob("*") if p.is_file()]
        for value in SECRETS.values():
            assert not any(value in text for text in sent), value
    assert "${AWS_SECRET_ACCESS_KEY}" in (tmp_path / "wd0" / MANIFEST_NAME).read_text()


def test_relative_local_output_becomes_absolute(manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sub = build(manifest, tmp_path / "wd", output="out")
    assert sub.output_root == str(tmp_path / "out")
    assert sub.entrypoint.endswith(f"--output {tmp_path / 'out'}")
    assert sub.metadata["evalsvc_output"] == str(tmp_path / "out")
    assert normalize_root("s3://b/p/") == "s3://b/p"


def test_entrypoint_quotes_odd_paths(manifest: Path, tmp_path: Path) -> None:
    sub = build(manifest, tmp_path / "wd", output=str(tmp_path / "my out"))
    assert sub.entrypoint.endswith(f"--output '{tmp_path / 'my out'}'")


def test_bad_working_dir_and_run_id(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--working-dir .*: not an evalsvc source checkout"):
        build(manifest, tmp_path / "wd", source=tmp_path)
    with pytest.raises(UserError, match="--run-id 'a/b' is not valid"):
        check_run_id("a/b")
