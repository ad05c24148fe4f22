"""Fetching and verifying MedSafetyBench: cache vs mirror, sha256 checks, downloads from a loopback HTTP server."""

from __future__ import annotations

import http.server
import threading
from functools import partial
from pathlib import Path

import pytest

from evalsvc.benchmarks.fetch import cache_dir, ensure, fetch, locate, read_verified, repo_root, verify_root
from evalsvc.benchmarks.msb import load_msb
from evalsvc.benchmarks.registry import MEDSAFETYBENCH as MSB
from evalsvc.errors import SystemError_, UserError

P1 = "datasets/test/gpt4/med_safety_demonstrations_category_1.csv"
P2 = "datasets/test/gpt4/med_safety_demonstrations_category_2.csv"


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01  # one flipped bit is enough
    path.write_bytes(bytes(data))


def test_default_location_is_the_shared_mirror_read_in_place(shared_msb, data_env):
    loc = locate(MSB)
    assert loc is not None and loc.kind == "mirror" and loc.root == shared_msb
    assert fetch(MSB) == loc
    assert not data_env.exists(), "using a mirror in place writes nothing to the cache"


def test_verify_names_the_corrupted_file_and_the_missing_ones(small_mirror):
    root = small_mirror(P1, P2)
    corrupt(root / P2)
    problems = verify_root(MSB, root)
    differing = [p for p in problems if "differs" in p]
    missing = [p for p in problems if p.endswith(": missing")]
    assert len(differing) == 1 and differing[0].startswith(str(root / P2))
    assert len(missing) == len(MSB.files) - 2 and len(problems) == len(MSB.files) - 1
    assert not any(P1 in p for p in problems)


def test_reading_a_corrupted_file_fails_naming_it(small_mirror):
    root = small_mirror(P1, P2)
    corrupt(root / P1)
    with pytest.raises(SystemError_, match=r"category_1\.csv: sha256 differs"):
        load_msb("test", ensure(MSB))


def test_reading_a_missing_file_says_how_to_fetch(small_mirror):
    small_mirror(P1)
    with pytest.raises(SystemError_, match=r"category_2\.csv is missing: run `evalsvc datasets fetch medsafetybench`"):
        load_msb("test", ensure(MSB))


def test_fetch_refuses_a_corrupted_mirror(small_mirror):
    corrupt(small_mirror(P1) / P1)
    with pytest.raises(SystemError_) as e:
        fetch(MSB)
    assert any(P1 in line and "differs" in line for line in e.value.problems)


def test_fetch_copy_fills_the_cache_which_then_wins(shared_msb, data_env, monkeypatch):
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", str(shared_msb.parent))
    loc = fetch(MSB, copy=True)
    assert loc.kind == "cache" and loc.root == cache_dir(MSB) and loc.root.is_relative_to(data_env)
    assert verify_root(MSB, loc.root) == []
    assert locate(MSB).kind == "cache"
    assert [it.text for it in load_msb("train", loc)] == [it.text for it in load_msb("train", locate(MSB))]


def test_data_dir_argument_overrides_the_env(tmp_path):
    assert cache_dir(MSB, tmp_path / "elsewhere") == (tmp_path / "elsewhere" / "medsafetybench" / MSB.commit)


def test_mirror_env_must_point_at_a_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(UserError, match="EVALSVC_DATA_MIRROR"):
        locate(MSB)


def test_cache_inside_the_project_is_refused(monkeypatch):
    repo = repo_root()
    assert repo is not None
    target = repo / "datasets-cache-should-not-exist"
    monkeypatch.setenv("EVALSVC_DATA_DIR", str(target))
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", "none")
    with pytest.raises(UserError, match="inside the project"):
        fetch(MSB, base_url="http://127.0.0.1:9")
    assert not target.exists()


@pytest.fixture
def http_mirror(tmp_path, shared_msb):
    """A loopback HTTP server laid out like raw.githubusercontent.com/<repo>/<commit>/ (files are symlinks)."""
    site = tmp_path / "site"
    for f in MSB.files:
        dest = site / MSB.repo / MSB.commit / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(shared_msb / f.path)
    handler = partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_download_fills_the_cache_and_checks_every_file(http_mirror, monkeypatch):
    _, url = http_mirror
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", "none")
    assert locate(MSB) is None
    loc = fetch(MSB, base_url=url)
    assert loc.kind == "cache" and verify_root(MSB, loc.root) == []
    assert len(load_msb("test", loc)) == 900
    assert not list(loc.root.rglob("*.part*")), "no partial files are left behind"


def test_download_of_a_changed_file_is_rejected_and_not_written(http_mirror, monkeypatch):
    site, url = http_mirror
    served = site / MSB.repo / MSB.commit / P2
    data = bytearray(served.read_bytes())
    served.unlink()
    data[10] ^= 0x01
    served.write_bytes(bytes(data))
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", "none")
    with pytest.raises(SystemError_, match=r"category_2\.csv: sha256 .* is not the pinned"):
        fetch(MSB, base_url=url)
    assert not (cache_dir(MSB) / P2).exists()


def test_offline_download_is_a_clear_system_error(monkeypatch):
    monkeypatch.setenv("EVALSVC_DATA_MIRROR", "none")
    monkeypatch.setenv("EVALSVC_DATA_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(SystemError_, match=r"could not download http://127\.0\.0\.1:9/.*EVALSVC_DATA_MIRROR"):
        ensure(MSB)


def test_read_verified_returns_the_pinned_bytes(shared_msb):
    loc = ensure(MSB)
    assert read_verified(MSB, loc, P1) == (shared_msb / P1).read_bytes()
