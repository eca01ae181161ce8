"""Admission control for grpc.aio servers: each server's queue is bounded by time.

Every unary call passes the server's `Gate` before its handler runs:
- on arrival it is refused with RESOURCE_EXHAUSTED at once when the wait ahead of it (what the
  oldest waiting call has waited, or the queue's length in service times) is over the queue's
  time bound (`queue_factor` times the method's measured service time, at least
  `min_queue_s`), or when the caller's remaining deadline is shorter than that wait plus the
  service time (it would only fail later, after taking its share);
- otherwise it waits for its turn in a FIFO queue; a call whose turn comes after it has waited
  longer than the bound is refused then (shed from the head), so an admitted call never waits
  longer than the bound here;
- at most `concurrency` handlers run at once (None: no bound).

Why a gate of our own and not only grpc's `maximum_concurrent_rpcs`: a grpc.aio server takes
one call at a time out of gRPC core, between the tasks its event loop runs. While a handler
that never yields runs (Thunder's are plain computations over in-memory stores), the other
calls wait in gRPC core, out of sight, and grpc's limit counts only the few it has taken. For
such servers `accept_window_s` holds the next handler back after one finishes, until no new
call has arrived for that long (at most about one service time), so calls queued in gRPC reach
the gate and are refused or queued where their wait is seen. How fast calls come out of gRPC
core is still bounded by the thread hand-offs of each call (docs/reliability.md, measured).

The service time is a moving average of the handler's own time (turn to answer, without the
wait). Each deadline refusal decays it, so one slow outlier cannot keep short-deadline callers
out. Refusals are counted in `foryou_grpc_admission_refused_total{service,method,reason}`;
waits in `foryou_grpc_queue_seconds{service}`, the queue in `foryou_grpc_queue_length`."""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import prometheus_client

from foryou import config

ADMISSION_REFUSED = prometheus_client.Counter(
    "foryou_grpc_admission_refused", "Calls refused at once with RESOURCE_EXHAUSTED: the queue's wait was "
    "over its time bound (reason=queue), or longer than the caller's deadline leaves (reason=deadline)",
    ["service", "method", "reason"])
SERVICE_TIME = prometheus_client.Gauge(
    "foryou_grpc_service_time_seconds", "Moving average of a method's handler time, as admission sees it",
    ["service", "method"])
QUEUE_WAIT = prometheus_client.Histogram(
    "foryou_grpc_queue_seconds", "Time an admitted call waited for its turn", ["service"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
QUEUE_LENGTH = prometheus_client.Gauge(
    "foryou_grpc_queue_length", "Admitted calls waiting for their turn", ["service"])


@dataclass
class ServiceTime:
    """A method's recent handler time (exponential moving average). Each refusal decays it, so
    one slow outlier cannot keep every short-deadline caller out: after a few refusals calls
    are admitted again and measured afresh."""
    alpha: float = 0.2
    decay_on_refusal: float = 0.9
    estimate_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.estimate_s = seconds if self.estimate_s == 0.0 else (
            self.alpha * seconds + (1 - self.alpha) * self.estimate_s)

    def admits(self, remaining_s: float | None, wait_s: float = 0.0) -> bool:
        if remaining_s is None or remaining_s >= wait_s + self.estimate_s:
            return True
        self.estimate_s *= self.decay_on_refusal
        return False


_DEFAULTS = config.ServerSettings


@dataclass(frozen=True)
class AdmissionLimits:
    """A server's admission limits; their defaults, meanings and each service's values are the
    settings of foryou/config.py `ServerSettings` (`of(settings)`)."""
    concurrency: int | None = None   # handlers running at once; None = no bound
    queue_factor: float = _DEFAULTS.default("queue_factor")
    min_queue_s: float = _DEFAULTS.default("min_queue_s")
    accept_window_s: float = _DEFAULTS.default("accept_window_s")

    @classmethod
    def of(cls, settings: config.ServerSettings) -> "AdmissionLimits":
        """A service's limits as its settings give them (`max_running` 0 = no bound)."""
        return cls(settings.max_running or None, settings.queue_factor, settings.min_queue_s, settings.accept_window_s)


def _over_bound(method: str, wait_s: float, bound_s: float) -> str:
    return f"overloaded: {method} call waited {wait_s * 1000:.0f} ms for a turn, over the {bound_s * 1000:.0f} ms bound"


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Gate:
    """One per server: the FIFO of calls waiting for a turn and the turn-giver."""

    def __init__(self, service: str, limits: AdmissionLimits = AdmissionLimits()) -> None:
        self.service = service
        self.limits = limits
        self.arrivals = 0                                    # calls that reached the gate
        self.running = 0
        self._waiting: deque[tuple[float, float, asyncio.Future]] = deque()  # (arrived at, bound, turn)
        self._dispatcher: asyncio.Task | None = None
        self._last_done = 0.0                                # when a handler last finished
        self._last_service_s = 0.0
        self._slot_freed: asyncio.Event | None = None
        self._queue_wait = QUEUE_WAIT.labels(service)
        self._queue_length = QUEUE_LENGTH.labels(service)

    def oldest_wait_s(self, now: float) -> float:
        return now - self._waiting[0][0] if self._waiting else 0.0

    def bound_s(self, times: ServiceTime) -> float:
        return max(self.limits.min_queue_s, self.limits.queue_factor * times.estimate_s)

    def check(self, method: str, times: ServiceTime, remaining_s: float | None) -> float:
        """Raises Refused when a call arriving now should not wait for a turn; else returns
        the longest it may wait for one."""
        self.arrivals += 1
        now = time.perf_counter()
        # The wait ahead: what the oldest has waited, or the queue's length in service times.
        wait_s = max(self.oldest_wait_s(now), len(self._waiting) * times.estimate_s / (self.limits.concurrency or 1))
        bound_s = self.bound_s(times)
        if wait_s > bound_s:
            raise Refused("queue", _over_bound(method, wait_s, bound_s))
        estimate_s = times.estimate_s
        if not times.admits(remaining_s, wait_s):
            raise Refused("deadline", f"overloaded: {method} takes about {(wait_s + estimate_s) * 1000:.0f} ms "
                                      "now, more than the caller's deadline leaves")
        return bound_s

    async def turn(self, method: str, bound_s: float) -> None:
        """Waits for this call's turn (the caller must call `done()` after its handler), or
        raises Refused if it has waited longer than `bound_s` when its turn comes."""
        now = time.perf_counter()
        if not self._waiting and self._has_slot() and not self._accepting(now):
            self.running += 1
            self._queue_wait.observe(0.0)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((now, bound_s, future))
        self._queue_length.set(len(self._waiting))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name=f"gate-{self.service}")
        try:
            await future
        except Refused:
            raise
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():     # given a turn, then cancelled
                self.done()
            raise
        self._queue_wait.observe(time.perf_counter() - now)

    def done(self, service_s: float = 0.0) -> None:
        self.running -= 1
        self._last_done = time.perf_counter()
        self._last_service_s = service_s
        if self._slot_freed is not None:
            self._slot_freed.set()

    def _has_slot(self) -> bool:
        return self.limits.concurrency is None or self.running < self.limits.concurrency

    def _accepting(self, now: float) -> bool:
        """Within the accept window that follows a finished handler."""
        return self.limits.accept_window_s > 0 and now - self._last_done < self.limits.accept_window_s

    async def _dispatch(self) -> None:
        while self._waiting:
            while not self._has_slot():
                await self._wait_for_slot()
                self._shed_stale()
                if not self._waiting:
                    return
            if self.limits.accept_window_s > 0:
                await self._let_arrivals_in()
            self._shed_stale()
            while self._waiting:
                _, _, future = self._waiting.popleft()
                self._queue_length.set(len(self._waiting))
                if not future.done():                        # not cancelled meanwhile
                    self.running += 1
                    future.set_result(None)
                    break
            await asyncio.sleep(0)                           # the granted handler runs first

    async def _wait_for_slot(self) -> None:
        """Until a handler finishes, or the oldest waiting call reaches its bound."""
        self._slot_freed = self._slot_freed or asyncio.Event()
        self._slot_freed.clear()
        arrived, bound_s, _ = self._waiting[0]
        timeout_s = max(0.0, arrived + bound_s - time.perf_counter())
        try:
            await asyncio.wait_for(self._slot_freed.wait(), timeout_s)
        except TimeoutError:
            pass

    def _shed_stale(self) -> None:
        """Refuses, from the head, each waiting call that has waited longer than its bound."""
        now = time.perf_counter()
        while self._waiting:
            arrived, bound_s, future = self._waiting[0]
            if not future.done() and now - arrived <= bound_s:
                return
            self._waiting.popleft()
            if not future.done():
                future.set_exception(Refused("queue", _over_bound("this", now - arrived, bound_s)))
        self._queue_length.set(0)

    async def _let_arrivals_in(self) -> None:
        """Waits until no call has arrived for `accept_window_s`, for at most about the last
        handler's service time in all, so calls in gRPC's queue reach `check` before the next
        handler takes the loop."""
        window_s = self.limits.accept_window_s
        until = time.perf_counter() + max(window_s, self._last_service_s)
        seen = self.arrivals
        while True:
            await asyncio.sleep(window_s)
            if self.arrivals == seen or time.perf_counter() >= until:
                return
            seen = self.arrivals
