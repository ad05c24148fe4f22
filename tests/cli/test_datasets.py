"""`evalsvc datasets list|fetch|verify` in-process (Typer's CliRunner) and through the installed console script."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from evalsvc.benchmarks.fetch import find_mirror
from evalsvc.benchmarks.registry import MEDSAFETYBENCH as MSB
from evalsvc.cli import datasets
from evalsvc.errors import SystemError_, UserError

P3 = "datasets/train/llama2/med_safety_demonstrations_category_3.csv"


@pytest.fixture(autouse=True)
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EVALSVC_DATA_MIRROR", raising=False)
    monkeypatch.delenv("EVALSVC_DATA_URL", raising=False)


@pytest.fixture
def corrupt_mirror(tmp_path, monkeypatch) -> Path:
    """EVALSVC_DATA_MIRROR pointing at a full copy of MedSafetyBench with one byte of P3 changed."""
    shared = find_mirror(MSB)
    assert shared is not None
    root = tmp_path / "mirror" / "medsafetybench"
    shutil.copytree(shared / "datasets", root / "datasets")
    data = bytearray((root / P3).read_bytes())
    data[50] ^= 0x01
    (root / P3).write_bytes(bytes(data))
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", str(root.parent))
    return root


def invoke(*args: str):
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps `datasets` a subcommand group
    datasets.register(app)
    return CliRunner().invoke(app, ["datasets", *args], env={"COLUMNS": "200"})


def test_list_shows_every_dataset_with_counts_and_location():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("medsafetybench", "medguard", "medharm", "test (default)", "llama3", "74,374", "sample (default)"):
        assert text in out
    assert "yes (mirror)" in out and str(find_mirror(MSB)) in out
    assert out.count("bundled") == 2


def test_fetch_copy_then_list_shows_the_cache(tmp_path):
    result = invoke("fetch", "medsafetybench", "--copy", "--data-dir", str(tmp_path / "dd"))
    assert result.exit_code == 0, result.output
    assert "45 files verified" in result.output and "in the cache" in result.output
    listed = invoke("list", "--data-dir", str(tmp_path / "dd"))
    assert "yes (cache)" in listed.output
    assert "yes (mirror)" in invoke("list").output, "without --data-dir the (empty) env cache is used"


def test_fetch_bundled_has_nothing_to_do():
    result = invoke("fetch", "medguard")
    assert result.exit_code == 0 and "nothing to fetch" in result.output


def test_verify_passes_on_the_pinned_copy():
    result = invoke("verify")
    assert result.exit_code == 0, result.output
    assert "all 45 files match" in result.output and "medharm: bundled sample loads, 20 items" in result.output


def test_verify_names_the_differing_file(corrupt_mirror):
    result = invoke("verify", "medsafetybench")
    assert isinstance(result.exception, SystemError_)
    [line] = result.exception.problems
    assert line.startswith(f"medsafetybench: {corrupt_mirror / P3}: sha256 ") and "differs from the pinned" in line


def test_unknown_dataset_is_a_user_error():
    result = invoke("verify", "medqa")
    assert isinstance(result.exception, UserError) and "unknown dataset 'medqa'" in result.exception.message


def test_help_has_examples():
    for cmd in ("list", "fetch", "verify"):
        result = invoke(cmd, "--help")
        assert result.exit_code == 0 and f"Example: evalsvc datasets {cmd}" in result.output


def evalsvc(*args: str) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "evalsvc"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=60)


def test_console_script_lists_datasets():
    result = evalsvc("datasets", "list")
    assert result.returncode == 0, result.stderr
    assert "medsafetybench" in result.stdout and "74,374" in result.stdout


def test_console_script_verify_exits_1_naming_the_file(corrupt_mirror):
    result = evalsvc("datasets", "verify", "medsafetybench")  # inherits EVALSVC_DATA_MIRROR
    assert result.returncode == 1
    assert "error:" in result.stderr and "med_safety_demonstrations_category_3.csv" in result.stderr
    assert "differs from the pinned" in result.stderr
