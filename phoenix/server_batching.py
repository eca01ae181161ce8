"""Micro-batching: concurrent requests are gathered into one call of a batch function.

The first waiting item opens a batch; the batch closes when it holds `max_batch` items, when
its items' total size reaches `max_size` (Rank: candidates; a request big enough to keep the
model busy on its own gains nothing from waiting for company), or when `max_wait_ms` has passed
since it opened, whichever comes first. Each worker (one by default) runs one batch at a time
in a thread (JAX releases the GIL while computing), so requests that arrive while the
workers are busy queue up and form the next, larger batch: the batch size adapts to load
with a bounded extra latency when idle.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

import prometheus_client

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = prometheus_client.Histogram(
    "foryou_phoenix_batch_size", "requests per micro-batch", ["batcher"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)


class MicroBatcher(Generic[T, R]):
    def __init__(self, name: str, process: Callable[[list[T]], list[R]], max_batch: int, max_wait_ms: float,
                 executor: Executor | None = None, size: Callable[[T], int] | None = None,
                 max_size: int | None = None, workers: int = 1) -> None:
        """`max_batch`, `max_wait_ms`: the server's settings of those names (phoenix/settings.py);
        `size` of an item and `max_size` of a batch (both or neither); `workers`: batches that
        may run at once, each collected and run by its own worker."""
        if max_batch < 1 or workers < 1:
            raise ValueError("max_batch and workers must be >= 1")
        if (size is None) != (max_size is None):
            raise ValueError("size and max_size go together")
        self.name = name
        self._process = process
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self._executor = executor
        self._size = size
        self.max_size = max_size
        self._queue: asyncio.Queue[tuple[T, asyncio.Future]] | None = None
        self.workers = workers
        self._workers: list[asyncio.Task] = []
        self.batches_run = 0  # observable in tests: concurrent calls share batches

    async def submit(self, item: T) -> R:
        if not self._workers:
            self._queue = asyncio.Queue()
            self._workers = [asyncio.create_task(self._run(), name=f"batcher-{self.name}-{i}")
                             for i in range(self.workers)]
        assert self._queue is not None  # made with the worker
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError(f"batcher {self.name} closed"))

    async def _collect(self) -> list[tuple[T, asyncio.Future]]:
        queue = self._queue
        assert queue is not None  # the worker calling this was started with it
        batch = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch and not self._full(batch):
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    def _full(self, batch: list[tuple[T, asyncio.Future]]) -> bool:
        if self._size is None or self.max_size is None:
            return False
        return sum(self._size(item) for item, _ in batch) >= self.max_size

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not live:
                continue
            BATCH_SIZE.labels(self.name).observe(len(live))
            try:
                results = await loop.run_in_executor(self._executor, self._process, [i for i, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} items")
            except Exception as exc:  # every caller of the batch sees the failure
                log.exception("batch %s failed", self.name)
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            finally:
                self.batches_run += 1
            for (_, fut), result in zip(live, results):
                if not fut.done():
                    fut.set_result(result)
