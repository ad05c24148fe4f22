"""Fixtures shared by the whole test tree: where the repo and ../shared are, a real S3 server, the local models.

Session-scoped things start once per pytest run; each test gets its own S3 prefix (`s3_uri`) to stay independent.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

# vLLM's engine core in the process that loads it: on CPU, V1 multiprocessing starts two more Pythons per engine
# (engine core and worker), each importing torch and vLLM again. The tests' tiny-model runs generate a few hundred
# tokens, so start-up is nearly all they cost (a judged one-cell run: 146 s instead of 164 s here). Product runs
# keep vLLM's default (docs/performance.md). Set before any Ray starts, so every raylet and job inherits it.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
# Modules start and stop Ray in this one process (a local Ray, a multi-node cluster). A Serve handle made under an
# earlier Ray keeps a router thread whose metrics task would call ray.init() on its own between two of them and
# hang on a cluster that is gone; every test starts Ray explicitly. Read by Ray at import, so set before it.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")

REPO = Path(__file__).parents[1]
SHARED = REPO.parent / "shared"
TEST_BUCKET = "evalsvc-test"


def list_keys(s3, prefix: str = "", bucket: str = TEST_BUCKET) -> list[str]:
    """All object keys under `prefix` in `bucket` of DevS3 server `s3`, sorted (follows pagination)."""
    pages = s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """A SeaweedFS S3 server on free loopback ports with random credentials and the bucket `evalsvc-test`."""
    from evalsvc.store.devs3 import DevS3

    with DevS3(tmp_path_factory.mktemp("devs3")) as server:
        server.create_bucket(TEST_BUCKET)
        yield server


@pytest.fixture
def s3_uri(s3, request: pytest.FixtureRequest) -> str:
    """A fresh s3://evalsvc-test/<test>-<random> prefix on the session server, for this test alone."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")[:60]
    return f"s3://{TEST_BUCKET}/{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def s3_keys(s3) -> Callable[..., list[str]]:
    """`s3_keys(prefix="", bucket="evalsvc-test")`: the sorted keys on the session server."""
    return lambda prefix="", bucket=TEST_BUCKET: list_keys(s3, prefix, bucket)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama folder (evalsvc://tiny), built into a session tmp dir (well under a second)."""
    from evalsvc.engines.prepare import prepare

    return prepare("tiny", tmp_path_factory.mktemp("models"), say=lambda _: None)


@pytest.fixture(scope="session")
def smollm2_model() -> Path:
    """The SmolLM2-135M-Instruct folder in the user cache ($EVALSVC_MODEL_DIR or ~/.cache): ~30 s the first time."""
    from evalsvc.engines.prepare import prepare

    return prepare("smollm2")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder beside the checkout (DESIGN.md, data, schemas)."""
    return SHARED


# Small synthetic runs (Hive-partitioned Parquet in a temp folder) for the analysis, render and store tests.
@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """2 models × 3 benchmarks (harm, mcq, high_risk) × 2 strategies, 60 items, one sample each."""
    from fixtures.synthetic import SyntheticRun, write_synthetic_run

    from evalsvc.store.read import open_run

    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "small", SyntheticRun())
    return open_run("small", root)


@pytest.fixture(scope="session")
def multi_sample_run(tmp_path_factory):
    """Like small_run with 3 samples per item, so intervals must resample items."""
    from fixtures.synthetic import SyntheticRun, write_synthetic_run

    from evalsvc.store.read import open_run

    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "multi", SyntheticRun(samples=3, n_items=40))
    return open_run("multi", root)


@pytest.fixture(scope="session")
def guarded_run(tmp_path_factory):
    """small_run's grid with a guardrail axis: arms none, guard-a, guard-b (guard-b blocks more), 40 items."""
    from fixtures.synthetic import SyntheticRun, write_synthetic_run

    from evalsvc.store.read import open_run

    root = str(tmp_path_factory.mktemp("out"))
    write_synthetic_run(root, "guarded", SyntheticRun(n_items=40, guardrails=("none", "guard-a", "guard-b")))
    return open_run("guarded", root)


class CliResult(NamedTuple):
    """What a command gave: unpacks as (code, out, err) and reads like a CompletedProcess."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """`cli(*args, env={...})`: the console script's entry point, in-process, with its real error printing and exit
    codes but without a Python start-up and import per call (about 1-2 s each). `env` is set for that call only;
    the environment the test set up (a cluster token, an output root) is left as it is.
    The tests that check the installed script itself run it as a process."""
    from evalsvc.cli import main as cli_main

    if not any(c.name == "submit" for c in cli_main.app.registered_commands):  # registered once per session
        cli_main._load_commands()
    monkeypatch.setattr(cli_main, "_load_commands", lambda: None)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps at the terminal width; keep lines whole
    monkeypatch.delenv("EVALSVC_DEBUG", raising=False)  # a traceback would change what stderr says

    def run(*args: str | Path, env: dict[str, str] | None = None) -> CliResult:
        capsys.readouterr()
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                m.setenv(k, v)
            m.setattr(sys, "argv", ["evalsvc", *map(str, args)])
            try:
                cli_main.main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


# Fixtures that start Ray (a local one, a multi-node one, a head node): a test using one belongs to the slow tier,
# whether or not its module says so, so that `-m "not slow"` never starts Ray.
RAY_FIXTURES = frozenset({"ray_local", "cluster", "ray_head"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With $EVALSVC_TEST_TIMES set, append `seconds<TAB>phase<TAB>test id` per phase as it ends: a run cut short
    by a time limit still shows where its time went (pytest's own --durations prints only at the end)."""
    path = os.environ.get("EVALSVC_TEST_TIMES")
    if path:
        with open(path, "a") as out:
            out.write(f"{report.duration:.2f}\t{report.when}\t{report.nodeid}\n")
