"""What `evalsvc submit` sends to the Ray Jobs API: the entrypoint, the runtime_env (manifest, evalsvc itself)
and the job metadata that lets `status` / `cancel` find the run's output from its id alone.

Credentials are never part of it: the manifest holds ${VAR} references, the cluster resolves them from its own env.
"""

from __future__ import annotations

import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from evalsvc import __version__
from evalsvc.errors import UserError
from evalsvc.manifest.schema import Manifest
from evalsvc.store.layout import RUN_ID_RE, RunLayout
from evalsvc.store.uri import is_s3

MANIFEST_NAME = "manifest.yaml"  # the manifest's name inside the uploaded working_dir
SOURCE_PARTS = ("evalsvc", "judges", "pyproject.toml")  # what a checkout needs to run (rubrics live in judges/)
META_RUN_ID = "evalsvc_run_id"
META_OUTPUT = "evalsvc_output"


@dataclass(frozen=True)
class Submission:
    run_id: str
    output_root: str  # where the run writes runs/<run_id>/ (the --output given to `evalsvc run`)
    entrypoint: str
    runtime_env: dict
    metadata: dict[str, str]

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.output_root, self.run_id)


def output_root(manifest: Manifest, output: str | None) -> str:
    """--output or the manifest's output.uri, normalised (the job's cwd is not the submitter's)."""
    return normalize_root(output or manifest.output.uri)


def normalize_root(root: str) -> str:
    """An output root as runs record it: s3:// without a trailing slash, a local folder as an absolute path."""
    return root.rstrip("/") if is_s3(root) else str(Path(root).expanduser().resolve())


def check_run_id(run_id: str) -> str:
    if not RUN_ID_RE.match(run_id):
        raise UserError(f"--run-id {run_id!r} is not valid: 1-128 letters, digits, '_', '.', '-' (start with a letter or digit)")
    return run_id


def build_submission(
    manifest_file: Path,
    manifest: Manifest,
    staging: Path,
    run_id: str,
    output: str | None = None,
    source: Path | None = None,
    pin: bool = True,
) -> Submission:
    """Stage the working_dir in `staging` (the manifest file, plus the evalsvc source with `source`) and describe
    the job. Without `source` the cluster gets evalsvc=={version} from pip, or its own install when `pin` is off."""
    stage_working_dir(staging, manifest_file, source)
    root = output_root(manifest, output)
    run_args = ["run", MANIFEST_NAME, "--run-id", check_run_id(run_id), "--output", root]
    # From a source tree `evalsvc` may not be installed on the cluster: run the CLI module from the working_dir
    # (Ray puts it first on PYTHONPATH) with the cluster's python.
    command = ["python", "-m", "evalsvc.cli.main"] if source else ["evalsvc"]
    runtime_env: dict = {"working_dir": str(staging)}
    if source is None and pin:
        runtime_env["pip"] = [f"evalsvc=={__version__}"]
    how = "working-dir" if source else ("pip" if pin else "cluster")
    metadata = {
        META_RUN_ID: run_id,
        META_OUTPUT: root,
        "evalsvc_manifest": manifest.name,
        "evalsvc_version": __version__,
        "evalsvc_install": how,
    }
    return Submission(run_id, root, shlex.join(command + run_args), runtime_env, metadata)


def stage_working_dir(staging: Path, manifest_file: Path, source: Path | None) -> None:
    staging.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest_file, staging / MANIFEST_NAME)
    if source is None:
        return
    source = source.expanduser().resolve()
    if not (source / "evalsvc" / "__init__.py").is_file():
        raise UserError(f"--working-dir {source}: not an evalsvc source checkout (no evalsvc/__init__.py); give the repository root")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    for part in SOURCE_PARTS:
        src = source / part
        if src.is_dir():
            shutil.copytree(src, staging / part, ignore=ignore)
        elif src.is_file():
            shutil.copyfile(src, staging / part)


def submit(jobs, sub: Submission) -> str:
    """Send the job; returns the Ray submission id (the run id)."""
    return jobs.submit(sub.entrypoint, sub.run_id, sub.runtime_env, sub.metadata)
