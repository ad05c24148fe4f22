"""Peak resident memory of this (driver) process while a block runs, sampled by a background thread.

ru_maxrss is a high-water mark for the whole process life; sampling gives each measured block its own peak.
"""

from __future__ import annotations

import os
import threading


def rss_bytes() -> int:
    """Current resident set size of this process (psutil when present, else /proc)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """`with PeakRSS() as p: ...` then `p.peak` / `p.start` in bytes."""

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakRSS:
        self.start = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())
