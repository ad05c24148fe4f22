"""Chat calls through a server being replaced: a lost replica is waited for and the call sent again; other errors
are not, and the wait has a bound."""

from __future__ import annotations

import asyncio

import pytest

from evalsvc.engines.chat import RequestRefused, chat_with_retries, no_choice_error, refused, through_outages


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


class Refusing:
    """A client whose server refuses every request as a final 4xx answer (or, `transient`, fails as a 503 does)."""

    def __init__(self, transient: bool = False):
        self.transient, self.calls = transient, 0

    async def chat(self, body: dict) -> str:
        self.calls += 1
        status = 503 if self.transient else 400
        raise no_choice_error({"error": {"message": "prompt longer than the context", "code": status}})


def test_a_request_the_server_refuses_is_not_sent_again():
    """A prompt longer than the judge's context gets the same 400 every time: one call, the refusal propagates."""
    client = Refusing()
    with pytest.raises(RequestRefused, match="longer than the context"):
        asyncio.run(chat_with_retries(client, {}, attempts=4, base_delay=0.001))
    assert client.calls == 1


def test_a_server_side_failure_is_retried_until_the_attempts_are_spent():
    client = Refusing(transient=True)
    with pytest.raises(RuntimeError) as err:
        asyncio.run(chat_with_retries(client, {}, attempts=3, base_delay=0.001))
    assert not isinstance(err.value, RequestRefused) and client.calls == 3


@pytest.mark.parametrize(("status", "final"), [(400, True), (404, True), (422, True), (408, False), (429, False),
                                               (500, False), (None, False)])  # fmt: skip
def test_which_statuses_are_final(status, final):
    assert refused(status) is final
