"""The query that flows through the For You pipeline: the request, its parameters, and what
the query hydrators add (user features, engagement history)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from foryou_protos import thunder_pb2
from home_mixer.bloom import ImpressionBloomFilter
from home_mixer.params import Params


@dataclass(frozen=True)
class UserFeatures:
    following: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()
    muted: frozenset[int] = frozenset()
    muted_keywords: tuple[str, ...] = ()
    subscriptions: frozenset[int] = frozenset()
    served_ids: tuple[int, ...] = ()  # recently served to the user (Thunder's record), newest first
    served_at_ms: tuple[int, ...] = ()  # when each of served_ids was served (same length)
    # Of `following`, the accounts that follow the viewer back (MutualFollowReplyBoostScorer).
    mutual_follows: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if len(self.served_at_ms) != len(self.served_ids):
            raise ValueError(f"served_at_ms has {len(self.served_at_ms)} entries for {len(self.served_ids)} served ids")


@dataclass(frozen=True)
class HistoryEntry:
    """One engagement-sequence entry: the user's actions on one post, merged (multi-hot)."""
    post_id: int
    author_id: int
    actions: frozenset[int]  # foryou.Action values
    surface: int             # foryou.ProductSurface value
    timestamp_ms: int
    dwell_time_ms: int = 0   # longest dwell among the merged engagements (a Phoenix v2 input)


@dataclass
class ScoredPostsQuery:
    viewer_id: int
    request_id: str
    params: Params = field(default_factory=Params)
    client_app_id: str = ""
    country_code: str = ""
    language_code: str = ""
    seen_ids: frozenset[int] = frozenset()
    served_ids: frozenset[int] = frozenset()  # sent by the client (this session)
    in_network_only: bool = False
    is_bottom_request: bool = False
    bloom_filters: tuple[ImpressionBloomFilter, ...] = ()
    disabled_components: frozenset[str] = frozenset()
    debug: bool = False
    deadline: float | None = None  # time.monotonic() by which the response is due
    # Filled by the query hydrators; None when the hydrator failed (the request goes on, and
    # the safety filters remove every candidate whose check needs them).
    user_context: thunder_pb2.UserContext | None = None  # Thunder's answer (UserContext hydrator)
    user_features: UserFeatures | None = None
    history: tuple[HistoryEntry, ...] = ()
    # What this request had to take from the safety cache (home_mixer/safety_cache.py) because
    # Thunder did not answer: reported in the response's `degraded`. Shared by query copies.
    notes: set[str] = field(default_factory=set, repr=False, compare=False)

    @property
    def features(self) -> UserFeatures:
        return self.user_features or UserFeatures()

    def all_served_ids(self) -> frozenset[int]:
        return self.served_ids | frozenset(self.features.served_ids)

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()
