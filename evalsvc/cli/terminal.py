"""Keep the terminal for evalsvc's own output while a command runs Ray: file descriptors 1 and 2 (where Ray, Serve,
vLLM and their C++ parts write) point at a log file, and the command writes through saved copies of the terminal.

Ray is shut down before the descriptors come back, so nothing it prints at exit lands after a `--json` document.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class Terminal:
    """`with Terminal(log) as term:` — `term.out` / `term.err` reach the user; everything else goes to `log`.

    `log=None` (--verbose) leaves Ray's output on the terminal; `json_stdout` then still moves it off stdout, so
    stdout carries the JSON result alone. A Ray the command started is shut down on the way out; one that was up
    before it (a caller's own, in the same process) is left running.
    """

    def __init__(self, log: Path | None, json_stdout: bool = False):
        self.log, self.json_stdout = log, json_stdout
        self._saved: tuple[int, int] | None = None
        self._made: list[Path] = []  # folders made for the log, deepest first
        self.out: IO[str] = sys.stdout
        self.err: IO[str] = sys.stderr
        self._ray_was_up = False

    def __enter__(self) -> Terminal:
        self._ray_was_up = _ray_up()
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self.out = os.fdopen(os.dup(self._saved[0]), "w", buffering=1, encoding="utf-8")
        self.err = os.fdopen(os.dup(self._saved[1]), "w", buffering=1, encoding="utf-8")
        if self.log is not None:
            self._made = [p for p in [self.log.parent, *self.log.parent.parents] if not p.exists()]
            self.log.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        elif self.json_stdout:
            os.dup2(2, 1)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if not self._ray_was_up:
                shutdown_ray()  # at exit Ray would print (worker counts, shutdown notices) to whatever fd 1 is then
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for f in (self.out, self.err):
                f.flush()
                f.close()
            out, err = self._saved or (None, None)
            if out is not None and err is not None:
                os.dup2(out, 1)
                os.dup2(err, 2)
                os.close(out)
                os.close(err)
            self.out, self.err = sys.stdout, sys.stderr
            _drop_if_empty(self.log, self._made)

    def isatty(self) -> bool:
        return self.out.isatty()


@contextmanager
def ray_console(log: Path | None, as_json: bool, say) -> Iterator[Terminal]:
    """The terminal of a command that runs Ray: Ray's, Serve's and vLLM's output goes to `log` (named through `say`
    before and, when the command fails, on stderr after), or stays on the terminal with `log=None` (--verbose); with `as_json`
    stdout carries the JSON result alone either way."""
    env = {"EVALSVC_RAY_LOGS": "1"}  # workers' output reaches this process: the log (or --verbose)
    if log is not None:
        say(f"[dim]Ray, Serve and vLLM output: {log}[/dim]")
        env["RAY_COLOR_PREFIX"] = "0"  # plain text in the file (Ray colours each worker's prefix)
    try:
        with _defaults(env), Terminal(log, json_stdout=as_json) as term:
            yield term
    except Exception:
        if log is not None and log.exists():
            from rich.console import Console

            Console(stderr=True, highlight=False).print(f"[dim]Ray, Serve and vLLM output: {log}[/dim]")
        raise


@contextmanager
def _defaults(env: dict[str, str]) -> Iterator[None]:
    """Export what `env` names and the user left unset, for the command only: a caller in the same process (a
    test, a notebook) finds its environment as it was."""
    added = {k: v for k, v in env.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def run_log(root: str, run_id: str) -> Path:
    """Where a run's console log goes: its run folder when local, else $EVALSVC_LOG_DIR (~/.cache/evalsvc/logs)."""
    from evalsvc.store.uri import is_s3

    if not is_s3(root):
        return Path(root).expanduser().resolve() / "runs" / run_id / "logs" / "run.log"
    return log_dir() / f"{run_id}.log"


def log_dir() -> Path:
    """$EVALSVC_LOG_DIR, else ~/.cache/evalsvc/logs: console logs of runs written to S3 and of folderless commands."""
    return Path(os.environ.get("EVALSVC_LOG_DIR") or Path.home() / ".cache" / "evalsvc" / "logs")


def shutdown_ray() -> None:
    """Shut down (or disconnect from) Ray; a no-op when Ray was never imported or is not initialised."""
    if _ray_up():
        sys.modules["ray"].shutdown()


def _ray_up() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _drop_if_empty(log: Path | None, made: list[Path]) -> None:
    """A command that failed before anything was logged (a manifest error) leaves no empty log, nor the folders
    made for it, behind."""
    if log is None or not log.exists() or log.stat().st_size:
        return
    log.unlink()
    for folder in made:
        try:
            folder.rmdir()  # only when nothing else was written there
        except OSError:
            return
