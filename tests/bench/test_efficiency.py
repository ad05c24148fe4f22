"""The efficiency suite's arithmetic and lever parsing (no engine: the timings are synthetic)."""

from __future__ import annotations

import pytest

from evalsvc.bench.efficiency import Levers, parse_levers, steady_numbers
from evalsvc.errors import UserError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("16x8", Levers(16, 8)),
        ("64x16p256", Levers(64, 16, 256)),
        ("32x4p-1+nomp", Levers(32, 4, -1, True)),
        (" 8x2+nomp ", Levers(8, 2, None, True)),
    ],
)
def test_parse_levers(text, expected):
    lv = parse_levers(text)
    assert lv == expected
    assert parse_levers(lv.label) == lv  # the label reads back as the same setting


@pytest.mark.parametrize("bad", ["16", "x8", "16x8p", "16*8", "16x8+mp"])
def test_bad_levers_name_the_flag_and_the_form(bad):
    with pytest.raises(UserError, match="--config .*BATCHxCONCURRENT"):
        parse_levers(bad)


@pytest.mark.parametrize("bad", ["0x8", "16x0"])
def test_levers_must_be_positive(bad):
    with pytest.raises(UserError, match="at least 1"):
        parse_levers(bad)


def test_steady_state_starts_when_the_engine_took_its_first_request():
    # Pipeline starts at t=100; rows left the engine at 130 and 140 after 10 s and 12 s inside it:
    # the first request went in at 120, so start-up is 20 s and the steady part runs 120 → 150.
    got = steady_numbers(t0=100.0, t_end=150.0, t_done=[130.0, 140.0], latency=[10.0, 12.0], tokens=600)
    assert got["startup_s"] == pytest.approx(20.0)
    assert got["steady_s"] == pytest.approx(30.0)
    assert got["steady_tok_s"] == pytest.approx(20.0)


def test_steady_state_ignores_rows_without_timing_and_reports_none_when_all_failed():
    got = steady_numbers(100.0, 150.0, [None, 140.0], [5.0, None], tokens=10)
    assert got == {"startup_s": None, "steady_s": None, "steady_tok_s": None}
    got = steady_numbers(100.0, 150.0, [None, 140.0, 145.0], [5.0, None, 15.0], tokens=100)
    assert got["startup_s"] == pytest.approx(30.0)
