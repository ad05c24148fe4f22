"""The house rules that tools can check: ruff, the package's floors (import contracts), types of the core floors,
and heavy libraries imported in one place each. They run with the tests, so CI enforces them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORE = ["evalsvc/store", "evalsvc/manifest", "evalsvc/plan", "evalsvc/envref.py", "evalsvc/errors.py"]


def _run(*cmd: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_ruff_is_clean():
    proc = _run(str(BIN / "ruff"), "check", "--no-cache", "evalsvc", "tests")
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_the_floors_hold(tmp_path):
    # lint-imports reads the contracts from pyproject.toml ([tool.importlinter]); its cache stays out of the repo
    proc = _run(str(BIN / "lint-imports"), "--no-cache", "--config", str(REPO / "pyproject.toml"))
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_core_floors_type_check(tmp_path):
    proc = _run(str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy"), *CORE)
    assert proc.returncode == 0, proc.stdout[-4000:]


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_ray_serve_is_imported_in_one_place():
    users = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "evalsvc").rglob("*.py")
        if any(m == "ray.serve" or m.startswith("ray.serve.") for m in _imports(p))
    )
    assert users == ["evalsvc/engines/serve_llm/__init__.py", "evalsvc/engines/serve_llm/replica.py"]


def test_importing_the_package_does_not_import_ray_torch_or_vllm():
    code = "import sys, evalsvc.cli.main; print(sorted(m for m in ('ray', 'torch', 'vllm') if m in sys.modules))"
    proc = _run(sys.executable, "-c", code)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-2000:]
