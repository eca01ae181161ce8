"""The hidden ground truth of a synthetic world, for the User page and handle search.

`foryou seed` and `foryou demo` already save the seeded world's config (with its `now_ms`) as
`world.json` in the state directory, and `foryou.world.generate_world` is deterministic for a
config, so the explorer regenerates the very same world from that file (in a worker thread,
once per file version) instead of the services exposing hidden tastes. A stack fed with other
data simply has no world file, and the pages leave the ground truth out."""
from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from foryou.world import World

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicRow:
    topic: str
    taste: float          # the user's hidden interest in the topic
    feed_share: float     # share of the feed's posts on the topic
    corpus_share: float   # share of all posts on the topic


@dataclass
class WorldSummary:
    path: Path
    world: World
    handles: dict[str, int]             # lower-cased handle -> user id
    corpus_share: dict[int, float]      # topic index -> share of posts

    @classmethod
    def build(cls, path: Path) -> "WorldSummary":
        from foryou.world import WorldConfig, generate_world

        world = generate_world(WorldConfig(**json.loads(path.read_text())))
        counts = Counter(world.post_topic.values())
        total = max(sum(counts.values()), 1)
        return cls(path=path, world=world, handles={u.handle.lower(): u.user_id for u in world.users},
                   corpus_share={t: n / total for t, n in counts.items()})

    def has_user(self, user_id: int) -> bool:
        return 1 <= user_id <= len(self.world.users)

    def handle(self, user_id: int) -> str:
        return self.world.user(user_id).handle

    def topic_of(self, post_id: int) -> str | None:
        topic = self.world.post_topic.get(post_id)
        return None if topic is None else self.world.topic_names[topic]

    def topic_rows(self, user_id: int, feed_post_ids: list[int]) -> list[TopicRow]:
        """Every topic, most loved first: hidden taste next to the feed's and the corpus's mix."""
        taste = self.world.user(user_id).taste
        feed = Counter(t for t in (self.world.post_topic.get(p) for p in feed_post_ids) if t is not None)
        n = max(len(feed_post_ids), 1)
        rows = [TopicRow(name, float(taste[i]), feed.get(i, 0) / n, self.corpus_share.get(i, 0.0))
                for i, name in enumerate(self.world.topic_names)]
        return sorted(rows, key=lambda r: -r.taste)


class WorldSource:
    """The world file, loaded on first use and again whenever it changes (a new seed)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._summary: WorldSummary | None = None
        self._version: tuple[float, int] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> WorldSummary | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        version = (stat.st_mtime, stat.st_size)
        async with self._lock:
            if version != self._version:
                try:
                    self._summary = await asyncio.to_thread(WorldSummary.build, self.path)
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("cannot regenerate the world from %s: %s", self.path, exc)
                    self._summary = None
                self._version = version
            return self._summary
