"""`evalsvc models prepare|list` in-process (Typer's CliRunner) and, for exit codes, through the console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from evalsvc.cli import models
from evalsvc.engines.prepare import MARKER
from evalsvc.errors import UserError


def invoke(*args: str):
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps `models` a subcommand group
    models.register(app)
    return CliRunner().invoke(app, ["models", *args], env={"COLUMNS": "250"})


def test_prepare_prints_the_folder_then_skips_the_second_time(tmp_path):
    first = invoke("prepare", "tiny", "--dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    folder = tmp_path / "tiny"
    assert first.stdout.strip() == str(folder) and (folder / MARKER).is_file()
    assert "preparing local model 'tiny'" in first.stderr
    second = invoke("prepare", "tiny", "--dir", str(tmp_path))
    assert second.exit_code == 0 and second.stdout.strip() == str(folder)
    assert "already prepared" in second.stderr and "preparing" not in second.stderr


def test_list_shows_state_and_size(tmp_path):
    before = invoke("list", "--dir", str(tmp_path))
    assert before.exit_code == 0, before.output
    assert "evalsvc://smollm2" in before.stdout and before.stdout.count("missing") == 2
    invoke("prepare", "tiny", "--dir", str(tmp_path))
    after = invoke("list", "--dir", str(tmp_path)).stdout
    tiny_row = next(line for line in after.splitlines() if "evalsvc://tiny" in line)
    assert "ready" in tiny_row and " MB" in tiny_row and str(tmp_path / "tiny") in tiny_row
    assert after.count("missing") == 1


def test_unknown_model_is_a_user_error(tmp_path):
    result = invoke("prepare", "llama", "--dir", str(tmp_path))
    assert isinstance(result.exception, UserError) and "available: smollm2, tiny" in result.exception.message
    assert not any(tmp_path.iterdir())


def test_help_has_examples():
    for cmd in ("prepare", "list"):
        result = invoke(cmd, "--help")
        assert result.exit_code == 0 and f"Example: evalsvc models {cmd}" in result.output


def test_console_script_exits_2_with_one_red_line(tmp_path):
    script = Path(sys.executable).parent / "evalsvc"
    result = subprocess.run([str(script), "models", "prepare", "tinny", "--dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown local model 'tinny': did you mean 'tiny'? available: smollm2, tiny"
