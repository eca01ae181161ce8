"""Overload: at 4x the concurrency a server sustains, calls beyond what it can serve in time
are refused with RESOURCE_EXHAUSTED at once (counted), admitted calls keep their latency, and
memory stays bounded (docs/reliability.md, "Bounded work under overload").

The first test runs the gate of foryou/grpc_server.py in-process with handlers that await
(their time is a sleep, so the latency bounds can be asserted on a loaded machine). The others
run the real Thunder and HomeMixer processes and assert what holds on any machine: no error
but a refusal or the caller's own deadline, every refusal counted, memory bounded, and the
server back to its unloaded latency right after. Their latencies are recorded
(`record_property`); the measured ramps are `foryou bench overload`."""
from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.request

import grpc
import numpy as np
import pytest

from bench.overload_load import OK, REFUSED, drive, running
from foryou.admission import AdmissionLimits
from foryou.broker import free_port
from tests.reliability.grpc_checks import sleeping_server

pytestmark = pytest.mark.exclusive  # asserts latency bounds

SERVICE_S = 0.3                    # long against the timer jitter of a loaded 2-core machine
SUSTAINED = 2                      # handlers the in-process server runs at once
RSS_GROWTH_MB = 64                 # stated bound: a server's RSS grows less than this under 4x load
ALLOWED = {OK, REFUSED}            # no DEADLINE_EXCEEDED, UNAVAILABLE, ...
# On a 2-core machine shared with other jobs the real servers also miss some deadlines: the
# calls then wait in gRPC core, before admission can see them (docs/reliability.md).
ALLOWED_REAL = ALLOWED | {"DEADLINE_EXCEEDED"}


def p99(samples: list[float]) -> float:
    return float(np.percentile(samples, 99))


async def test_gate_refuses_beyond_the_queue_bound_and_keeps_admitted_latency():
    async with sleeping_server("overload", SERVICE_S, AdmissionLimits(concurrency=SUSTAINED)) as call:
        unloaded = []
        for _ in range(5):
            started = time.perf_counter()
            await call(b"", timeout=5)
            unloaded.append(time.perf_counter() - started)
        codes: dict[str, list[float]] = {}

        async def client() -> None:
            stop_at = time.monotonic() + 2.4
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    await call(b"", timeout=5)
                    code = OK
                except grpc.aio.AioRpcError as err:
                    code = err.code().name
                codes.setdefault(code, []).append(time.perf_counter() - started)
        await asyncio.gather(*(client() for _ in range(4 * SUSTAINED)))
    assert set(codes) == ALLOWED, {c: len(v) for c, v in codes.items()}
    # p95: with about 25 admitted calls p99 is the maximum, which one stall of a shared machine
    # decides; the bound by design is one service time plus the queue bound (half of one).
    assert float(np.percentile(codes[OK], 95)) <= 2 * p99(unloaded), (sorted(codes[OK])[-5:], p99(unloaded))
    # Refused at arrival, or at the latest once it has waited the bound (half a service time):
    # never after a wait as long as a service.
    assert p99(codes[REFUSED]) < SERVICE_S, sorted(codes[REFUSED])[-5:]


def metric(port: int, name: str, **labels) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + " ") and not want:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def overload(service: str, kafka: str, sustained: int, record_property) -> tuple:
    metrics_port = free_port()
    async with running(service, kafka, metrics_port=metrics_port) as (process, target):
        await drive(process.address, dataclasses.replace(target, timeout_s=60.0), 1, 0.5)  # warm-up
        unloaded = await drive(process.address, target, 1, 1.0)
        rss_before = process.rss_mb()
        refused_before = metric(metrics_port, "foryou_grpc_admission_refused_total")
        loaded = await drive(process.address, target, 4 * sustained, 2.0)
        refused = metric(metrics_port, "foryou_grpc_admission_refused_total") - refused_before
        rss_growth = process.rss_mb() - rss_before
        after = await drive(process.address, target, 1, 1.0)
    for name, value in [("unloaded_p99_ms", unloaded.p(OK, 99)), ("admitted_p99_ms", loaded.p(OK, 99)),
                        ("refused_p99_ms", loaded.p(REFUSED, 99)), ("codes", dict(loaded.codes)),
                        ("rss_growth_mb", rss_growth)]:
        record_property(f"{service}_{name}", value)
    return unloaded, loaded, refused, rss_growth, after


def assert_bounded(unloaded, loaded, refused, rss_growth, after) -> None:
    assert set(loaded.codes) <= ALLOWED_REAL, loaded.codes
    # Every refusal is counted; a call refused just as its caller gave up reads DEADLINE_EXCEEDED.
    assert loaded.count(REFUSED) <= refused <= loaded.count(REFUSED) + loaded.count("DEADLINE_EXCEEDED")
    assert rss_growth < RSS_GROWTH_MB
    assert set(after.codes) == {OK}, after.codes                         # nothing left queued
    assert after.p(OK, 50) <= 2 * max(unloaded.p(OK, 50), 1.0), (after.p(OK, 50), unloaded.p(OK, 50))


async def test_thunder_at_4x_its_concurrency(kafka, record_property):
    # Thunder's handlers never yield; it sustains about 4 clients within twice its unloaded p99.
    assert_bounded(*await overload("thunder", kafka, 4, record_property))


async def test_home_mixer_at_4x_its_concurrency(kafka, record_property):
    # 4 = HomeMixer's gate concurrency (foryou/admission.py).
    assert_bounded(*await overload("home-mixer", kafka, 4, record_property))
