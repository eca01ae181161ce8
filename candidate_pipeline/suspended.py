"""A component coroutine stopped at its first wait, and how the executor drives it on: the
pipeline runs each call up to its first wait itself, so a pure computation costs no task."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from candidate_pipeline.components import Component


@dataclass
class Suspended:
    """A component coroutine that ran up to its first wait (`yielded`: what it waits on)."""
    component: Component
    coroutine: Any
    yielded: Any
    started: float

    async def resume(self) -> Any:
        """Drive the coroutine on from where it stopped, as `await` would: wait for what it
        yielded, send the outcome back in, until it returns. A cancellation (the timeout) is
        thrown into it, so its own cleanup runs."""
        coroutine, waiting = self.coroutine, self.yielded
        while True:
            try:
                if waiting is None:  # a bare `yield` (asyncio.sleep(0)): give the loop one turn
                    await asyncio.sleep(0)
                    outcome = None
                else:
                    # The component's own `await` marked the future as being waited on; this
                    # `await` takes that role over (as asyncio's Task does for a yielded future).
                    waiting._asyncio_future_blocking = False
                    outcome = await waiting
            except BaseException as exc:  # noqa: BLE001 - passed into the component, which decides
                try:
                    waiting = coroutine.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = coroutine.send(outcome)
            except StopIteration as done:
                return done.value


async def let_others_run() -> None:
    """One turn of the event loop: a run's computation between two waits is then one stage at
    most, so the loop serves other calls (an overloaded server's quick refusals among them)
    between the stages of the runs it is busy with."""
    await asyncio.sleep(0)
