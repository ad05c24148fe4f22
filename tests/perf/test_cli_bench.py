"""`evalsvc bench`'s own parsing and its user errors (the suites themselves are not run here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from evalsvc.cli.bench import parse_sizes
from evalsvc.errors import UserError


def test_sizes_accept_k_suffixes():
    assert parse_sizes("1k,10k,100000, 300K") == (1000, 10000, 100000, 300000)
    assert parse_sizes(None) is None


@pytest.mark.parametrize("bad", ["1k,ten", "0", "1.5k"])
def test_bad_sizes_are_user_errors(bad):
    with pytest.raises(UserError, match="--sizes"):
        parse_sizes(bad)


def _evalsvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalsvc.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_unknown_suite_and_foreign_option_exit_2_with_one_line():
    p = _evalsvc("bench", "memroy")
    assert p.returncode == 2 and "did you mean 'memory'" in p.stderr
    p = _evalsvc("bench", "memory", "--model", "tiny")
    assert p.returncode == 2 and "--model: not an option of suite 'memory'" in p.stderr


def test_help_has_an_example():
    p = _evalsvc("bench", "--help")
    assert p.returncode == 0 and "evalsvc bench efficiency" in p.stdout
