"""The circuit breaker's states on a fake clock: closed, open after N failures, one probe at a
time when half-open, closed again on a successful probe, and the health override."""
from __future__ import annotations

import asyncio

import prometheus_client
import pytest

from foryou.circuit_breaker import CLOSED, HALF_OPEN, NOT_SERVING, OPEN, CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def ok():
    return "ok"


async def boom():
    raise ConnectionError("down")


async def half_open(name: str) -> tuple[Clock, CircuitBreaker]:
    """A breaker opened by one failure, its cool-down over: the next call is the probe."""
    clock = Clock()
    breaker = CircuitBreaker(name, failure_threshold=1, reset_timeout_s=0.5, clock=clock)
    with pytest.raises(ConnectionError):
        await breaker.call(boom)
    clock.now += 0.5
    return clock, breaker


def state_metric(name: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value("foryou_circuit_breaker_state", {"dependency": name})
    assert value is not None, name
    return value


async def test_opens_after_consecutive_failures_then_probes_and_closes():
    clock = Clock()
    breaker = CircuitBreaker("dep_a", failure_threshold=3, reset_timeout_s=1.0, clock=clock)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await breaker.call(boom)
    assert await breaker.call(ok) == "ok" and breaker.failures == 0  # a success resets the count
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await breaker.call(boom)
    assert breaker.state == OPEN and state_metric("dep_a") == 2
    called = []

    async def recorded():
        called.append(1)
        return "ok"
    with pytest.raises(CircuitOpen):
        await breaker.call(recorded)
    assert called == []                         # an open breaker makes no call
    clock.now += 1.0
    assert breaker.state == HALF_OPEN
    with pytest.raises(ConnectionError):        # the probe fails: open for another cool-down
        await breaker.call(boom)
    assert breaker.state == OPEN
    clock.now += 1.0
    assert await breaker.call(ok) == "ok"
    assert breaker.state == CLOSED and state_metric("dep_a") == 0


async def test_half_open_lets_one_probe_through_at_a_time():
    clock, breaker = await half_open("dep_b")
    gate = asyncio.Event()

    async def slow_probe():
        await gate.wait()
        return "probe"
    probe = asyncio.create_task(breaker.call(slow_probe))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):            # a second caller while the probe is out
        await breaker.call(ok)
    gate.set()
    assert await probe == "probe" and breaker.state == CLOSED


async def test_a_cancelled_probe_reopens_and_frees_the_probe_slot():
    clock, breaker = await half_open("dep_c")
    probe = asyncio.create_task(breaker.call(lambda: asyncio.Event().wait()))
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state == OPEN
    clock.now += 0.5
    assert await breaker.call(ok) == "ok"


async def test_answers_that_are_not_outages_do_not_count():
    breaker = CircuitBreaker("dep_d", failure_threshold=1, is_failure=lambda exc: not isinstance(exc, ValueError))

    async def bad_request():
        raise ValueError("our bug")
    for _ in range(3):
        with pytest.raises(ValueError):
            await breaker.call(bad_request)
    assert breaker.state == CLOSED


async def test_not_serving_is_skipped_without_probes_and_probed_when_back():
    clock = Clock()
    breaker = CircuitBreaker("dep_e", failure_threshold=5, reset_timeout_s=10.0, clock=clock)
    breaker.set_serving(False)
    assert breaker.state == NOT_SERVING and state_metric("dep_e") == 3
    clock.now += 60
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    breaker.set_serving(True)
    assert breaker.state == HALF_OPEN           # trusted again after one good call
    assert await breaker.call(ok) == "ok" and breaker.state == CLOSED


async def test_a_cancelled_ordinary_call_is_no_verdict():
    breaker = CircuitBreaker("dep_f", failure_threshold=1)
    call = asyncio.create_task(breaker.call(lambda: asyncio.Event().wait()))
    await asyncio.sleep(0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert breaker.state == CLOSED and breaker.failures == 0
