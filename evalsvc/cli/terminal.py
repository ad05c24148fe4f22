"""Keep the terminal for evalsvc's own output while a command runs Ray: file descriptors 1 and 2 (where Ray, Serve,
vLLM and their C++ parts write) point at a log file, and the command writes through saved copies of the terminal.

Ray is shut down before the descriptors come back, so nothing it prints at exit lands after a `--json` document.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO


class Terminal:
    """`with Terminal(log) as term:` — `term.out` / `term.err` reach the user; everything else goes to `log`.

    `log=None` (--verbose) leaves Ray's output on the terminal; `json_stdout` then still moves it off stdout, so
    stdout carries the JSON result alone.
    """

    def __init__(self, log: Path | None, json_stdout: bool = False):
        self.log, self.json_stdout = log, json_stdout
        self._saved: tuple[int, int] | None = None
        self._made: list[Path] = []  # folders made for the log, deepest first
        self.out: IO[str] = sys.stdout
        self.err: IO[str] = sys.stderr

    def __enter__(self) -> Terminal:
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


def shutdown_ray() -> None:
    """Shut down (or disconnect from) Ray if this process started it; a no-op when Ray was never imported."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


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
