"""A bounded, short-lived copy of the safety facts Thunder gave: each viewer's user features
(blocks, mutes, muted keywords, subscriptions) and each post's core data with its deleted
flag and labels.

Every fresh Thunder answer overwrites the copy, so a deletion or label seen later wins over
what was stored before. The copy is read only when Thunder does not answer in time: a feed
built from it is as safe as it was `ttl_s` ago at worst, where without it the safe feed is
empty. Both maps are bounded in size (least recently set goes first) and in age
(cachetools.TTLCache); hits, misses and evictions (by size or age) are Prometheus counters by kind."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cachetools
import prometheus_client

from foryou_protos import common_pb2
from home_mixer.query import UserFeatures
from home_mixer.settings import HomeMixerSettings as _S

USERS, POSTS = "user_features", "posts"

HITS = prometheus_client.Counter("foryou_home_mixer_cache_hits", "Safety-cache reads that found a copy", ["kind"])
MISSES = prometheus_client.Counter("foryou_home_mixer_cache_misses", "Safety-cache reads without a copy", ["kind"])
EVICTIONS = prometheus_client.Counter(
    "foryou_home_mixer_cache_evictions", "Safety-cache entries dropped (reason: size, expired)", ["kind", "reason"])
SIZE = prometheus_client.Gauge("foryou_home_mixer_cache_entries", "Safety-cache entries", ["kind"])


class _CountingTTLCache(cachetools.TTLCache):
    def __init__(self, kind: str, maxsize: int, ttl: float, timer) -> None:
        super().__init__(maxsize, ttl, timer)
        self.kind = kind

    def popitem(self):  # called only to make room
        item = super().popitem()
        EVICTIONS.labels(self.kind, "size").inc()
        return item

    def expire(self, time=None):
        expired = super().expire(time)
        if expired:
            EVICTIONS.labels(self.kind, "expired").inc(len(expired))
        return expired


@dataclass
class SafetyCache:
    ttl_s: float = _S.default("cache_ttl_s")
    max_users: int = _S.default("cache_max_users")
    max_posts: int = _S.default("cache_max_posts")
    timer: object = None  # a clock for tests; default time.monotonic
    _users: cachetools.TTLCache = field(init=False, repr=False)
    _posts: cachetools.TTLCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import time
        timer = self.timer or time.monotonic
        self._users = _CountingTTLCache(USERS, max(1, self.max_users), self.ttl_s, timer)
        self._posts = _CountingTTLCache(POSTS, max(1, self.max_posts), self.ttl_s, timer)

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def put_features(self, viewer_id: int, features: UserFeatures) -> None:
        if self.enabled:
            self._users[viewer_id] = features
            SIZE.labels(USERS).set(len(self._users))

    def features(self, viewer_id: int) -> UserFeatures | None:
        found = self._users.get(viewer_id) if self.enabled else None
        (HITS if found is not None else MISSES).labels(USERS).inc()
        return found

    def put_posts(self, posts: Iterable[common_pb2.Post]) -> None:
        if self.enabled:
            for post in posts:
                self._posts[post.post_id] = post
            SIZE.labels(POSTS).set(len(self._posts))

    def posts(self, post_ids: Iterable[int]) -> dict[int, common_pb2.Post]:
        """The cached copies of those posts that have one."""
        found: dict[int, common_pb2.Post] = {}
        wanted = 0
        if self.enabled:
            for post_id in post_ids:
                wanted += 1
                post = self._posts.get(post_id)
                if post is not None:
                    found[post_id] = post
        if found:
            HITS.labels(POSTS).inc(len(found))
        if wanted - len(found):
            MISSES.labels(POSTS).inc(wanted - len(found))
        return found

    def __len__(self) -> int:
        return len(self._users) + len(self._posts)
