"""The driver memory sampler: it must see a block's own peak, not just the process's start."""

from __future__ import annotations

import time

from evalsvc.perf.rss import PeakRSS, rss_bytes

MIB = 1 << 20


def test_rss_is_positive():
    assert rss_bytes() > 10 * MIB


def test_peak_sees_a_short_lived_allocation():
    with PeakRSS(interval_s=0.01) as p:
        block = bytearray(96 * MIB)  # zero-filled: the pages are touched, so they are resident
        time.sleep(0.1)
        del block
    assert p.peak - p.start >= 64 * MIB


def test_peak_without_allocation_stays_near_start():
    with PeakRSS(interval_s=0.01) as p:
        time.sleep(0.05)
    assert p.start <= p.peak < p.start + 32 * MIB
