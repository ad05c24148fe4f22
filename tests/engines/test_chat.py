"""Chat calls through a server being replaced: a lost replica is waited for and the call sent again; other errors
are not, and the wait has a bound."""

from __future__ import annotations

import asyncio

import pytest

from evalsvc.engines.chat import through_outages


class Lost(Exception):
    pass


class Flaky:
    """Fails `lost` times with Lost, then answers; `other` makes the first call fail with a different error."""

    def __init__(self, lost: int, other: bool = False):
        self.lost, self.other, self.calls = lost, other, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.other:
            raise ValueError("bad request")
        if self.calls <= self.lost:
            raise Lost("replica died")
        return "answer"


def run(call, wait_s: float = 5.0) -> tuple[str, list[int]]:
    waits: list[int] = []
    out = asyncio.run(through_outages(call, (Lost,), wait_s, poll_s=0.001, on_wait=lambda: waits.append(1)))
    return out, waits


def test_a_call_is_sent_again_until_the_replaced_server_answers():
    call = Flaky(lost=3)
    out, waits = run(call)
    assert (out, call.calls, len(waits)) == ("answer", 4, 3)


def test_other_errors_are_not_waited_for():
    call = Flaky(lost=0, other=True)
    with pytest.raises(ValueError, match="bad request"):
        run(call)
    assert call.calls == 1


def test_the_wait_is_bounded_and_the_last_loss_propagates():
    call = Flaky(lost=10**9)
    with pytest.raises(Lost):
        run(call, wait_s=0.05)
    assert call.calls > 1
