"""A bounded, short-lived copy of the safety facts Thunder gave: each viewer's user features
(blocks, mutes, muted keywords, subscriptions) and each post's core data with its deleted
flag and labels.

Every fresh Thunder answer overwrites the copy, so a deletion or label seen later wins over
what was stored before. The copy is read only when Thunder does not answer in time: a feed
built from it is as safe as it was `ttl_s` ago at worst, where without it the safe feed is
empty. Both are bounded in size (least recently set goes first) and in age; hits, misses and
evictions (by size or age) are Prometheus counters by kind.

Posts are stored the way they arrive, as column chunks (one per Thunder answer), with an id ->
(chunk, row) index: writing a thousand posts per request is one C-level dict update, not a
thousand cache insertions. Chunks leave oldest first, by age or when the index is over size."""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import repeat

import cachetools
import numpy as np
import prometheus_client

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


class _Chunk:
    __slots__ = ("columns", "ids", "stored_at")

    def __init__(self, columns: Mapping[str, np.ndarray], stored_at: float) -> None:
        self.columns = columns
        self.ids = columns["post_id"].tolist()
        self.stored_at = stored_at


@dataclass
class SafetyCache:
    ttl_s: float = _S.default("cache_ttl_s")
    max_users: int = _S.default("cache_max_users")
    max_posts: int = _S.default("cache_max_posts")
    timer: Callable[[], float] | None = None  # a clock for tests; default time.monotonic
    _users: cachetools.TTLCache = field(init=False, repr=False)
    _chunks: deque = field(init=False, repr=False)
    _rows: dict = field(init=False, repr=False)  # post id -> (chunk, row): the newest copy

    def __post_init__(self) -> None:
        self._timer = self.timer or time.monotonic
        self._users = _CountingTTLCache(USERS, max(1, self.max_users), self.ttl_s, self._timer)
        self._chunks = deque()
        self._rows = {}

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

    def put_posts(self, columns: Mapping[str, np.ndarray]) -> None:
        """Thunder's answer for some posts (home_mixer/wire.py columns, `post_id` included)."""
        if not self.enabled:
            return
        now = self._timer()
        self._sweep(now)
        if len(columns.get("post_id", ())):
            chunk = _Chunk(columns, now)
            self._chunks.append(chunk)
            self._rows.update(zip(chunk.ids, zip(repeat(chunk), range(len(chunk.ids)))))
            while len(self._rows) > max(1, self.max_posts) and len(self._chunks) > 1:
                self._drop_oldest("size")
        SIZE.labels(POSTS).set(len(self._rows))

    def posts(self, post_ids: Iterable[int], names: Iterable[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(found, columns): for each id, whether a copy exists, and the `names` columns of the
        copies (rows of ids without a copy are left as zeros / None)."""
        post_ids = list(post_ids)
        names = list(names)
        n = len(post_ids)
        found = np.zeros(n, dtype=bool)
        by_chunk: dict[int, tuple[_Chunk, list[int], list[int]]] = {}
        if self.enabled:
            cutoff = self._timer() - self.ttl_s
            for position, post_id in enumerate(post_ids):
                entry = self._rows.get(post_id)
                if entry is None or entry[0].stored_at <= cutoff:
                    continue
                found[position] = True
                chunk, row = entry
                slot = by_chunk.setdefault(id(chunk), (chunk, [], []))
                slot[1].append(position)
                slot[2].append(row)
        columns: dict[str, np.ndarray] = {}
        for name in names:
            parts = [(positions, chunk.columns[name][rows]) for chunk, positions, rows in by_chunk.values()]
            template = parts[0][1] if parts else np.zeros(0)
            column = np.zeros(n, dtype=template.dtype) if template.dtype != object else np.empty(n, dtype=object)
            for positions, values in parts:
                column[positions] = values
            columns[name] = column
        hits = int(found.sum())
        if hits:
            HITS.labels(POSTS).inc(hits)
        if n - hits:
            MISSES.labels(POSTS).inc(n - hits)
        return found, columns

    def _sweep(self, now: float) -> None:
        while self._chunks and self._chunks[0].stored_at <= now - self.ttl_s:
            self._drop_oldest("expired")

    def _drop_oldest(self, reason: str) -> None:
        chunk = self._chunks.popleft()
        rows = self._rows
        dropped = 0
        for post_id in chunk.ids:
            entry = rows.get(post_id)
            if entry is not None and entry[0] is chunk:  # not superseded by a later answer
                del rows[post_id]
                dropped += 1
        if dropped:
            EVICTIONS.labels(POSTS, reason).inc(dropped)

    def __len__(self) -> int:
        return len(self._users) + len(self._rows)
