"""`evalsvc validate`: good manifests pass with their counts; every bad manifest of the corpus exits 2 with its field path.

Most runs go through `evalsvc.cli.main.main()` in-process (the real error printing and exit codes, without the
~0.5 s start-up of a process each); a handful go through the installed console script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
BAD = ROOT / "tests" / "manifest" / "bad"
EVALSVC = Path(sys.executable).parent / "evalsvc"


@pytest.fixture(autouse=True)
def data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EVALSVC_DATA_MIRROR", raising=False)
    monkeypatch.delenv("EVALSVC_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width; keep lines whole
    monkeypatch.chdir(tmp_path)  # relative paths in the corpus must not exist


def run_process(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EVALSVC_DEBUG"}
    return subprocess.run([str(EVALSVC), *args], capture_output=True, text=True, timeout=60, env=env)


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def assert_user_error(code: int, out: str, err: str, expected: list[str]) -> None:
    assert code == 2, err
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), err
    for text in expected:
        assert text in err


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_manifest_exits_2_naming_the_field(path: Path, cli):
    code, out, err = cli("validate", str(path))
    assert_user_error(code, out, err, expectations(path))
    assert "valid:" not in out


def test_corpus_size():
    assert len(list(BAD.glob("*.yaml"))) >= 40


def test_several_problems_come_as_one_line_each(cli):
    code, _, err = cli("validate", str(BAD / "several-problems.yaml"))
    lines = err.splitlines()
    assert code == 2 and lines[0].endswith("several-problems.yaml: 6 problem(s) in the manifest")
    assert len(lines) == 7
    assert [line.removeprefix("error: ").split(":")[0] for line in lines[1:]] == [
        "models.0.name", "benchmarks.0.select", "strategies.0.user_template", "sampling.temperature", "output.uri",
        "resources.typo",
    ]


def test_quickstart_is_valid(cli):
    code, out, err = cli("validate", str(MANIFESTS / "quickstart.yaml"))
    # 2 requests per AMA principle (9) × basic / cot / safety, all judged
    assert (code, err) == (0, "")
    # the next line (if any) says whether the prompts were counted: that depends on whether smollm2 is prepared
    assert out.splitlines()[0] == "valid: 3 cells, 54 generations, 54 judge calls (+ 16 judge-health probe calls)"


def test_sweep_is_valid_without_its_env_vars(cli, monkeypatch):
    for var in ("S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    code, out, err = cli("validate", str(MANIFESTS / "medsafety-sweep.yaml"))
    assert (code, err) == (0, "")
    assert out.startswith("valid: 60 cells, 18800 generations")


def test_missing_file(cli, tmp_path):
    code, out, err = cli("validate", str(tmp_path / "nope.yaml"))
    assert_user_error(code, out, err, ["nope.yaml: no such manifest file"])


def test_usage_error_exits_2(cli):
    code, _, err = cli("validate")
    assert "Traceback" not in err
    assert code == 2 and "manifest" in err


def test_help_has_an_example(cli):
    code, out, _ = cli("validate", "--help")
    assert code == 0 and "evalsvc validate manifests/quickstart.yaml" in out


SUBPROCESS_CASES = ["several-problems", "output-literal-secret"]  # the in-process runs above cover the rest


@pytest.mark.parametrize("stem", SUBPROCESS_CASES)
def test_console_script_on_bad_manifests(stem: str):
    path = BAD / f"{stem}.yaml"
    proc = run_process("validate", str(path))
    assert_user_error(proc.returncode, proc.stdout, proc.stderr, expectations(path))
    assert "wJalrXUtnFEMI" not in proc.stderr  # a literal secret is refused, never echoed


def test_console_script_on_a_good_manifest():
    proc = run_process("validate", str(MANIFESTS / "quickstart.yaml"))
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines()[0] == "valid: 3 cells, 54 generations, 54 judge calls (+ 16 judge-health probe calls)"
