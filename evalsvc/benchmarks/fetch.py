"""Where a remote dataset's bytes live: the local cache, a local mirror read in place, or a download of the pinned commit.

Every file is sha256-checked when fetched and again whenever a loader reads it, so a changed copy never yields items.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from evalsvc.benchmarks.registry import RemoteDataset
from evalsvc.errors import SystemError_, UserError

ENV_DATA_DIR = "EVALSVC_DATA_DIR"
ENV_MIRROR = "EVALSVC_DATA_MIRROR"
ENV_BASE_URL = "EVALSVC_DATA_URL"
MIRROR_OFF = "none"
DEFAULT_DATA_DIR = "~/.cache/evalsvc/datasets"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Location:
    root: Path  # the folder holding the upstream relative paths (datasets/...)
    kind: Literal["cache", "mirror"]


def repo_root() -> Path | None:
    """The project checkout evalsvc runs from, if any (an editable install or a clone on PYTHONPATH)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def cache_dir(ds: RemoteDataset, data_dir: str | Path | None = None) -> Path:
    base = data_dir or os.environ.get(ENV_DATA_DIR) or DEFAULT_DATA_DIR
    return Path(base).expanduser().resolve() / ds.name / ds.commit


def find_mirror(ds: RemoteDataset) -> Path | None:
    """A local copy of the upstream files: $EVALSVC_DATA_MIRROR/<name>, else ../shared/data/<name> beside the checkout
    or cwd. EVALSVC_DATA_MIRROR=none turns mirrors off (always use the cache or download)."""
    env = os.environ.get(ENV_MIRROR)
    if env == MIRROR_OFF:
        return None
    if env:
        root = Path(env).expanduser().resolve() / ds.name
        if not root.is_dir():
            raise UserError(
                f"{ENV_MIRROR}={env}: there is no folder {root}; point it at a folder holding {ds.name}/ or unset it"
            )
        return root
    # CI clones the project to X/main with the shared data at X/shared: look beside the checkout, then beside cwd.
    bases = [b for b in (repo_root(), Path.cwd()) if b is not None]
    for base in bases:
        root = (base / ".." / "shared" / "data" / ds.name).resolve()
        if root.is_dir():
            return root
    return None


def files_present(ds: RemoteDataset, root: Path) -> int:
    return sum((root / f.path).is_file() for f in ds.files)


def locate(ds: RemoteDataset, data_dir: str | Path | None = None) -> Location | None:
    """The complete cache if there is one, else a mirror, else None (nothing local: `fetch` downloads)."""
    cache = cache_dir(ds, data_dir)
    if files_present(ds, cache) == len(ds.files):
        return Location(cache, "cache")
    mirror = find_mirror(ds)
    return Location(mirror, "mirror") if mirror else None


def ensure(ds: RemoteDataset, data_dir: str | Path | None = None) -> Location:
    return locate(ds, data_dir) or fetch(ds, data_dir)


def fetch(
    ds: RemoteDataset, data_dir: str | Path | None = None, copy: bool = False, base_url: str | None = None
) -> Location:
    """Make every file of `ds` available and verified: a mirror is checked and used in place unless `copy`;
    otherwise missing or changed files are copied from the mirror or downloaded into the cache."""
    mirror = find_mirror(ds)
    if mirror is not None and not copy:
        problems = verify_root(ds, mirror)
        if problems:
            raise SystemError_(
                f"the mirror {mirror} does not match {ds.version}: fix or replace it, or unset {ENV_MIRROR}", problems
            )
        return Location(mirror, "mirror")
    cache = cache_dir(ds, data_dir)
    _refuse_inside_repo(cache)
    base_url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    for f in ds.files:
        dest = cache / f.path
        if dest.is_file() and _sha256(dest.read_bytes()) == f.sha256:
            continue
        if mirror is not None:
            data = _read(mirror / f.path, f"{f.path} is missing from the mirror {mirror}")
            origin = str(mirror / f.path)
        else:
            origin = ds.url(f.path, base_url)
            data = _download(origin, ds.name)
        got = _sha256(data)
        if got != f.sha256:
            raise SystemError_(
                f"{origin}: sha256 {got[:12]}… is not the pinned {f.sha256[:12]}… of {ds.version}; the file was not written"
            )
        _write_atomic(dest, data)
    return Location(cache, "cache")


def verify_root(ds: RemoteDataset, root: Path) -> list[str]:
    """One line per file under `root` that is missing or whose sha256 differs from the registry."""
    problems = []
    for f in ds.files:
        p = root / f.path
        if not p.is_file():
            problems.append(f"{p}: missing")
            continue
        got = _sha256(p.read_bytes())
        if got != f.sha256:
            problems.append(f"{p}: sha256 {got[:12]}… differs from the pinned {f.sha256[:12]}…")
    return problems


def read_verified(ds: RemoteDataset, loc: Location, path: str) -> bytes:
    """The bytes of one dataset file, refused unless they match the pinned sha256."""
    full = loc.root / path
    data = _read(full, f"{full} is missing: run `evalsvc datasets fetch {ds.name}`")
    if _sha256(data) != ds.file(path).sha256:
        fix = (
            f"delete {loc.root} and run `evalsvc datasets fetch {ds.name}`"
            if loc.kind == "cache"
            else "fix or replace the mirror"
        )
        raise SystemError_(
            f"{full}: sha256 differs from the pinned {ds.version} ({fix}; `evalsvc datasets verify` lists every file)"
        )
    return data


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path, missing: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SystemError_(missing) from None
    except OSError as e:
        raise SystemError_(f"{path}: cannot read ({e.strerror})") from None


def _download(url: str, name: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            data = resp.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise SystemError_(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SystemError_(
            f"could not download {url} ({reason}): no network? Put a copy of the files in a folder D/{name} "
            f"and set {ENV_MIRROR}=D"
        ) from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise SystemError_(f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes; this is not the pinned file")
    return data


def _write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.part{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def _refuse_inside_repo(cache: Path) -> None:
    repo = repo_root()
    if repo is not None and cache.is_relative_to(repo):
        raise UserError(
            f"{ENV_DATA_DIR}: the dataset cache {cache} is inside the project {repo}; data is never written into the "
            "project: choose a folder outside it"
        )
