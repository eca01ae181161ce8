"""Admission by deadline: a call whose deadline is shorter than the method's recent service
time is refused at once with RESOURCE_EXHAUSTED and counted; longer deadlines are served; a
slow outlier cannot lock short-deadline callers out for good."""
from __future__ import annotations

import time

import grpc
import prometheus_client
import pytest

from foryou.admission import ServiceTime
from tests.reliability.grpc_checks import sleeping_server

pytestmark = pytest.mark.exclusive  # asserts latency bounds

SLOW_S = 0.3


def refused_count() -> float:
    return prometheus_client.REGISTRY.get_sample_value(
        "foryou_grpc_admission_refused_total", {"service": "admission", "method": "Sleep", "reason": "deadline"}) or 0.0


async def test_short_deadlines_are_refused_early_and_counted():
    async with sleeping_server("admission", SLOW_S) as call:
        await call(b"", timeout=10)                           # measured: about SLOW_S
        before = refused_count()
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(b"", timeout=SLOW_S / 3)
        elapsed = time.perf_counter() - started
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in err.value.details()
        assert elapsed < SLOW_S / 3                          # refused, not timed out
        assert refused_count() == before + 1
        await call(b"", timeout=10)                           # a long enough deadline is served


def test_refusals_decay_the_estimate_so_callers_get_back_in():
    times = ServiceTime()
    times.observe(5.0)                                        # one slow outlier
    refusals = 0
    while not times.admits(0.5):
        refusals += 1
        assert refusals < 50
    assert 10 <= refusals <= 30 and times.admits(None)
