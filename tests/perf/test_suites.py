"""The suite registry: unknown names get a hint, and options a suite does not take are user errors."""

from __future__ import annotations

import pytest

from evalsvc.errors import UserError
from evalsvc.perf.suites import SUITES, check_options, suite_module, suite_options


def test_every_suite_has_a_run_function():
    for name in SUITES:
        assert callable(suite_module(name).run)


def test_importing_the_suites_does_not_import_vllm_or_start_ray():
    import subprocess
    import sys

    code = (
        "import sys, evalsvc.perf.suites as s\n"
        "[s.suite_module(n) for n in s.SUITES]\n"
        "print('vllm' in sys.modules, 'ray' in sys.modules and sys.modules['ray'].is_initialized())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_unknown_suite_suggests_the_closest():
    with pytest.raises(UserError, match=r"unknown bench suite 'memroy': did you mean 'memory'\? available: efficiency"):
        suite_module("memroy")


def test_options_are_the_run_parameters():
    assert suite_options("memory") == ["sizes"]
    assert set(suite_options("efficiency")) >= {"model", "n", "max_tokens", "configs"}


def test_unset_options_are_dropped_and_foreign_ones_rejected():
    assert check_options("memory", {"sizes": (1000,), "model": None}) == {"sizes": (1000,)}
    with pytest.raises(UserError, match=r"--model, --n: not an option of suite 'memory' \(it takes --sizes\)"):
        check_options("memory", {"sizes": None, "model": "tiny", "n": 5})
