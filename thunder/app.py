"""ThunderApp: the stores, the Kafka ingestor, the gRPC server and the background tasks,
started and stopped together. Used by `foryou thunder` (thunder/main.py) and in-process by
tests and benchmarks."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from foryou.grpc_server import ServiceServer
from foryou.snowflake import now_ms
from thunder import metrics
from thunder.ingest import Ingestor
from thunder.post_store import PostStore
from thunder.service import SERVICE_NAME, ThunderHandlers, ThunderServicer, add_to_server
from thunder.settings import ThunderSettings
from thunder.user_store import UserStore

log = logging.getLogger(__name__)


class ThunderApp:
    def __init__(self, settings: ThunderSettings | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        settings = settings or ThunderSettings()
        self.settings = settings
        self.clock = clock
        self.posts = PostStore(settings.store, settings.query)
        self.users = UserStore(settings.store)
        self.ingestor = Ingestor(settings, self.posts, self.users, clock, on_reset=self._on_log_reset)
        self.handlers = ThunderHandlers(self.posts, self.users, settings.query, clock)
        self.server = ServiceServer.of("thunder", [SERVICE_NAME], settings)
        self.ready = asyncio.Event()   # set once caught up and SERVING
        add_to_server(ThunderServicer(self.handlers, self.ready.is_set), self.server.server)
        self._tasks: list[asyncio.Task] = []
        self._last_stats = (time.monotonic(), 0)  # (when, records applied) at the last export

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> str:
        return self.server.address

    async def start(self) -> "ThunderApp":
        """Start serving gRPC (NOT_SERVING) and the Kafka replay; returns at once. `ready` is set
        (and health turns SERVING) when the replay has caught up."""
        await self.server.start()
        self._tasks = [
            asyncio.create_task(self._ingest_forever(), name="thunder-ingest"),
            asyncio.create_task(self._every(self.settings.trim_interval_s, self.trim), name="thunder-trim"),
            asyncio.create_task(self._every(self.settings.stats_interval_s, self.export_stats), name="thunder-stats"),
        ]
        return self

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout_s)

    async def _ingest_forever(self) -> None:
        """Run the ingestor; if it ever fails, reconnect and replay again. Every store update is
        idempotent, so replaying on top of the current state is safe."""
        while True:
            try:
                await self.ingestor.run(on_caught_up=self._on_caught_up)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Kafka ingestion failed; reconnecting and replaying")
                await self.ingestor.stop()
                await asyncio.sleep(1.0)

    async def _on_caught_up(self) -> None:
        if self.ready.is_set():
            return  # a replay after an ingestion failure: already serving
        self.export_stats()
        await self.server.set_serving()
        self.ready.set()

    async def _on_log_reset(self) -> None:
        """The log the stores were built from is gone: stop serving until they are rebuilt
        (the ingestor clears them and replays; `_on_caught_up` serves again)."""
        self.ready.clear()
        await self.server.set_not_serving()

    async def stop(self, grace_s: float = 1.0) -> None:
        await self.server.stop(grace_s)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.ingestor.stop()

    async def _every(self, interval_s: float, action: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                action()
            except Exception:  # a failing housekeeping pass must not end the loop
                log.exception("%s failed", getattr(action, "__name__", action))

    def trim(self) -> int:
        """Drop everything older than the retention window (runs every trim_interval_s)."""
        now = self.clock()
        posts = self.posts.trim(now)
        engagements = self.users.trim(now)
        metrics.TRIMMED.labels("posts").inc(posts)
        metrics.TRIMMED.labels("engagements").inc(engagements)
        if posts or engagements:
            log.info("trimmed %d posts and %d engagements older than the retention window", posts, engagements)
        return posts + engagements

    def export_stats(self) -> dict[str, int]:
        now, applied = time.monotonic(), self.ingestor.applied
        last_at, last_applied = self._last_stats
        if now > last_at:
            metrics.EVENTS_PER_SECOND.set((applied - last_applied) / (now - last_at))
        self._last_stats = (now, applied)
        sizes = {**self.posts.sizes(), **self.users.sizes()}
        for kind, size in sizes.items():
            metrics.STORE_SIZE.labels(kind).set(size)
        lag = self.ingestor.lag_by_topic()
        for topic, behind in lag.items():
            metrics.CONSUMER_LAG.labels(topic).set(behind)
        log.info("store sizes %s, consumer lag %s", sizes, lag)
        return sizes
