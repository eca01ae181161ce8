"""A circuit breaker for calls to one dependency, for asyncio.

Closed: calls go through; `failure_threshold` failures in a row open it. Open: calls fail at
once with `CircuitOpen` (costing nothing) for `reset_timeout_s`. Then half-open: one call at a
time goes through as a probe; its success closes the breaker, its failure opens it again for
another cool-down. A dependency that says it is not serving (health) is skipped like an open
breaker, without probes, until it says it is serving again.

pybreaker was considered: its async support is built on Tornado, not asyncio, and it keeps
no per-call probe slot, so this small class does the job (tests/reliability/test_circuit_breaker.py).
The state is the `foryou_circuit_breaker_state` gauge (0 closed, 1 half-open, 2 open,
3 not serving), labelled by dependency."""
from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import prometheus_client

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN, NOT_SERVING = "closed", "half_open", "open", "not_serving"
_STATE_VALUE = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2, NOT_SERVING: 3}

STATE = prometheus_client.Gauge(
    "foryou_circuit_breaker_state", "Breaker state per dependency: 0 closed, 1 half-open, 2 open, 3 not serving",
    ["dependency"])
REJECTED = prometheus_client.Counter(
    "foryou_circuit_breaker_rejected", "Calls not made because the breaker was open", ["dependency"])
TRANSITIONS = prometheus_client.Counter(
    "foryou_circuit_breaker_transitions", "Breaker state changes", ["dependency", "to"])


class CircuitOpen(ConnectionError):
    """The call was not made: the dependency failed repeatedly (or is not serving)."""


@dataclass
class CircuitBreaker:
    dependency: str
    failure_threshold: int = 5
    reset_timeout_s: float = 1.0
    # Which exceptions count against the dependency; others (e.g. INVALID_ARGUMENT, a bug of
    # ours) pass through and count as an answer.
    is_failure: Callable[[BaseException], bool] = lambda exc: True
    clock: Callable[[], float] = time.monotonic
    failures: int = field(default=0, init=False)
    _opened_at: float = field(default=0.0, init=False)
    _open: bool = field(default=False, init=False)
    _probing: bool = field(default=False, init=False)
    _not_serving: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._publish()

    @property
    def state(self) -> str:
        if self._not_serving:
            return NOT_SERVING
        if not self._open:
            return CLOSED
        return HALF_OPEN if self.clock() - self._opened_at >= self.reset_timeout_s else OPEN

    def set_serving(self, serving: bool) -> None:
        """What the dependency's health check said."""
        if serving == (not self._not_serving):
            return
        self._not_serving = not serving
        if serving:  # back: probe it before trusting it fully
            self._open, self._opened_at, self.failures = True, self.clock() - self.reset_timeout_s, 0
        self._publish()

    async def call(self, make: Callable[[], Awaitable[T]]) -> T:
        probe = self._admit()
        try:
            result = await make()
        except Exception as exc:
            if self.is_failure(exc):
                self._failed()
            else:
                self._succeeded()
            raise
        except BaseException:  # cancelled (e.g. the caller went away): no verdict on the dependency,
            if probe:          # except that a probe that did not answer proves nothing good
                self._failed()
            raise
        finally:
            if probe:
                self._probing = False
        self._succeeded()
        return result

    def _admit(self) -> bool:
        """Whether the call is a probe; raises CircuitOpen when it may not be made."""
        state = self.state
        if state == CLOSED:
            return False
        if state == HALF_OPEN and not self._probing:
            self._probing = True
            self._publish()
            return True
        REJECTED.labels(self.dependency).inc()
        raise CircuitOpen(f"{self.dependency}: circuit {state} ({self.failures} failures in a row)")

    def _succeeded(self) -> None:
        self.failures = 0
        if self._open:
            self._open = False
            self._publish()

    def _failed(self) -> None:
        self.failures += 1
        if self._open or self.failures >= self.failure_threshold:
            self._open, self._opened_at = True, self.clock()
            self._publish()

    def _publish(self) -> None:
        state = self.state
        if getattr(self, "_published", None) != state:
            self._published = state
            TRANSITIONS.labels(self.dependency, state).inc()
        STATE.labels(self.dependency).set(_STATE_VALUE[state])
