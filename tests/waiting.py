"""The one "wait until" of the tests: poll a condition the system reaches asynchronously."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(check: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.05,
                     what: str | Callable[[], str] = "condition") -> Any:
    """Await `check()` (sync or async) until it returns a truthy value; returns that value.
    On timeout, an AssertionError names `what` (a string, or a callable giving one then) and
    the last value seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout_s}s waiting for {said} (last value {result!r})")
        await asyncio.sleep(interval_s)
