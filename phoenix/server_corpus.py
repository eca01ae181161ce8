"""Feeds the corpus index from the `posts` topic.

Every Phoenix replica reads the whole topic from the beginning (no consumer group: each
replica holds all recent posts). Created posts are embedded with the candidate tower in
batches and added; deleted posts are dropped; posts older than the retention are skipped on
arrival and swept out periodically. `caught_up` is set once the consumer has reached the end
offsets the topic had at start, which is when the server may report SERVING.

A rewound or reset log is rebuilt aside: the replay fills a new index (`rebuilding`) while
the old one keeps answering Retrieve, and the new one is installed (`install`) once the
replay has caught up, so Phoenix stays SERVING throughout (docs/durability.md).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import prometheus_client

from foryou import event_rules, snowflake, topics
from foryou.kafka import ReplayConsumer, security_options
from phoenix.content import ContentStore
from phoenix.index import CorpusIndex
from phoenix.post_kind import post_kind_codes

log = logging.getLogger(__name__)

RECORDS = prometheus_client.Counter(
    "foryou_phoenix_corpus_records_total", "posts-topic records handled by the corpus feeder", ["kind"])
CORPUS_SIZE = prometheus_client.Gauge("foryou_phoenix_corpus_size", "posts in the retrieval index")

EMBED_CHUNK = 4096  # posts per candidate-tower call (one poll is at most max_records)


@dataclass
class CorpusFeeder:
    bootstrap: str
    # returns (index, embed): the current index and the candidate tower that fills it. Both can
    # be swapped by a retriever reload, under `lock`, which the feeder holds while it writes.
    target: Callable[[], tuple[CorpusIndex, Callable[[np.ndarray, np.ndarray], np.ndarray]]]
    max_age_ms: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    expire_every_s: float = 30.0
    max_records: int = 2000
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    verify_interval_s: float = 5.0
    _reader: ReplayConsumer | None = field(default=None, init=False)
    # Content vectors (and semantic ids) of the posts, encoded from their text on arrival,
    # before the candidate tower embeds them (a v2 tower reads them), and their post_kind codes.
    content: ContentStore | None = None
    # Puts a rebuilt index in service (the server swaps it into its (models, index) pair);
    # None: the old index's contents are replaced in place by the rebuilt one's posts.
    install: Callable[[CorpusIndex], None] | None = None
    rebuilding: CorpusIndex | None = None  # the index a replay after a reset is filling
    _task: asyncio.Task | None = field(default=None, init=False)

    async def start(self) -> None:
        # The shared consumer (foryou/kafka.py) retries until Kafka and the topic exist, and on
        # a rewound or reset log empties the corpus (`_reset`) and replays the topic.
        self._reader = ReplayConsumer(self.bootstrap, (topics.POSTS,), "phoenix-corpus", self._handle,
                                      on_reset=self._reset, replay_max_records=self.max_records,
                                      live_max_records=self.max_records, verify_interval_s=self.verify_interval_s,
                                      consumer_options=security_options(), caught_up=self.caught_up)
        self._task = asyncio.create_task(self._run(), name="phoenix-corpus-feeder")
        self._task.add_done_callback(self._report_crash)

    @staticmethod
    def _report_crash(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("corpus feeder stopped: %r (the corpus no longer follows the posts topic)",
                      task.exception(), exc_info=task.exception())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self._reader is not None:
            await self._reader.stop()

    async def _run(self) -> None:
        async def caught_up() -> None:
            await self._install_rebuilt()
            index, _ = self.target()
            log.info("corpus caught up with %s: %d posts indexed", topics.POSTS, len(index))

        reader = self._reader
        assert reader is not None  # made by start(), which runs this
        expiry = asyncio.create_task(self._expire_forever())
        try:
            await reader.run(on_caught_up=caught_up)
        finally:
            expiry.cancel()

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.expire_every_s)
            await self.expire()

    async def _handle(self, batches) -> None:
        await self.apply([r for records in batches.values() for r in records])

    async def _reset(self) -> None:
        """The posts log was rewound or reset: the replay fills a new, empty index while the
        current one keeps serving (a second reset mid-replay starts the new one over)."""
        async with self.lock:
            index, _ = self.target()
            self.rebuilding = CorpusIndex(index.dim, ann_threshold=index.ann_threshold)

    async def _install_rebuilt(self) -> None:
        """The replay after a reset has caught up: serve the rebuilt index, and forget the content
        of posts only the old log had."""
        async with self.lock:
            fresh, self.rebuilding = self.rebuilding, None
            if fresh is None:
                return
            old, embed = self.target()
            if self.content is not None:
                gone = set(old.posts()[0].tolist()) - set(fresh.posts()[0].tolist())
                self.content.remove(list(gone))
            if self.install is not None:
                self.install(fresh)
            else:
                post_ids, author_ids = fresh.posts()
                old.remove(old.posts()[0].tolist())
                old.copy_tombstones_from(fresh)
                if len(post_ids):
                        old.upsert(post_ids.tolist(), author_ids.tolist(), embed(post_ids, author_ids))
            CORPUS_SIZE.set(len(self.target()[0]))
            log.info("corpus rebuilt after a log reset: %d posts", len(self.target()[0]))

    def writing_to(self) -> CorpusIndex:
        """The index records go into: the one being rebuilt, else the serving one."""
        return self.rebuilding if self.rebuilding is not None else self.target()[0]

    def lag(self) -> int:
        """Records of `posts` not yet indexed (never 0 while behind)."""
        return sum(self._reader.lag_by_topic().values()) if self._reader is not None else 1

    async def apply(self, records) -> None:
        """Decode one poll's records and apply them to the index, in record order per post."""
        created: dict[int, int] = {}   # post id -> author id, insertion-ordered
        # post id -> (text, reposted post id, then the other post_kind_codes columns)
        texts: dict[int, tuple[str, int, int, int, int, int]] = {}
        deleted: list[int] = []
        now = snowflake.now_ms()
        oldest_kept = snowflake.make_id(max(now - self.max_age_ms, snowflake.TWITTER_EPOCH_MS))
        for record in records:
            try:
                event = event_rules.check(topics.POSTS, record.key, record.value, now)
            except event_rules.BadRecord as exc:
                RECORDS.labels("malformed").inc()
                event_rules.count_refused("phoenix", topics.POSTS, exc.reason)
                log.warning("skipping %s posts record at %s/%d: %s", exc.reason, record.partition, record.offset, exc)
                continue
            kind = event.WhichOneof("event")
            RECORDS.labels(kind).inc()
            if kind == "created":
                post = event.created
                if post.post_id >= oldest_kept and not post.deleted:
                    created[post.post_id] = post.author_id
                    texts[post.post_id] = (post.text, post.repost_of_post_id, post.photo_count,
                                           post.video_duration_ms, post.in_reply_to_post_id, post.quote_of_post_id)
            elif kind == "deleted":
                created.pop(event.deleted.post_id, None)
                texts.pop(event.deleted.post_id, None)
                deleted.append(event.deleted.post_id)
        async with self.lock:
            _, embed = self.target()
            index = self.writing_to()
            if deleted:
                index.delete(deleted)  # tombstoned: a create arriving later is ignored
                if self.content is not None:
                    self.content.remove(deleted)
            if created and self.content is not None:
                ids = list(created)
                _, repost, photos, video, reply, quote = zip(*(texts[p] for p in ids))
                kinds = post_kind_codes(photos, video, reply, repost, quote)
                await asyncio.get_running_loop().run_in_executor(
                    None, self.content.add_posts, ids, [texts[p][0] for p in ids], list(repost), kinds)
            if created:
                await self._embed_into(index, embed, np.fromiter(created.keys(), np.uint64, len(created)),
                                       np.fromiter(created.values(), np.uint64, len(created)))
            CORPUS_SIZE.set(len(index))

    @staticmethod
    async def _embed_into(index: CorpusIndex, embed, post_ids: np.ndarray, author_ids: np.ndarray) -> None:
        loop = asyncio.get_running_loop()
        for lo in range(0, len(post_ids), EMBED_CHUNK):
            ids, authors = post_ids[lo:lo + EMBED_CHUNK], author_ids[lo:lo + EMBED_CHUNK]
            vectors = await loop.run_in_executor(None, embed, ids, authors)
            await loop.run_in_executor(None, index.upsert, ids.tolist(), authors.tolist(), vectors)

    async def expire(self) -> int:
        async with self.lock:
            index, _ = self.target()
            dropped = index.expire(snowflake.now_ms(), self.max_age_ms)
            if self.rebuilding is not None:
                self.rebuilding.expire(snowflake.now_ms(), self.max_age_ms)
            if self.content is not None:
                self.content.expire(snowflake.now_ms(), self.max_age_ms)
            CORPUS_SIZE.set(len(index))
        if dropped:
            log.info("corpus: expired %d posts older than %.1f h", dropped, self.max_age_ms / 3.6e6)
        return dropped


async def reembed(index: CorpusIndex, embed, dim: int, ann_threshold: int) -> CorpusIndex:
    """A new index holding the same posts as `index`, embedded by `embed` (a new retriever)."""
    fresh = CorpusIndex(dim, ann_threshold=ann_threshold, initial_capacity=max(1024, len(index)))
    post_ids, author_ids = index.posts()
    await CorpusFeeder._embed_into(fresh, embed, post_ids, author_ids)
    return fresh
