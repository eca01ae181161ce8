"""The user store: social graph, profiles, muted keywords, subscriptions (from `users`), recent
engagement sequences (from `engagements`) and recently served post ids with the time each was
served (from `served`).

Graph edges are last-writer-wins by event timestamp, so follow/unfollow (block/unblock, ...)
pairs converge to the same state whatever order, and however often, they are delivered.
"""
from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from foryou_protos import common_pb2, events_pb2
from thunder.settings import StoreLimits

_RECENT_REQUESTS = 64  # served events remembered per user to drop redelivered ones


class EdgeSet:
    """A set of ids (or keywords) whose adds and removes carry timestamps: an entry is present
    iff its latest add is newer than its latest remove (a tie goes to the remove)."""

    __slots__ = ("present", "removed")

    def __init__(self) -> None:
        self.present: dict = {}   # key -> latest add timestamp, in first-add order
        self.removed: dict = {}   # key -> latest remove timestamp, only while it matters

    def add(self, key, ts: int) -> bool:
        """True if `key` became present."""
        removed_at = self.removed.get(key)
        if removed_at is not None:
            if removed_at >= ts:
                return False
            del self.removed[key]
        old = self.present.get(key)
        self.present[key] = ts if old is None else max(old, ts)
        return old is None

    def remove(self, key, ts: int) -> bool:
        """True if `key` became absent."""
        added_at = self.present.get(key)
        if added_at is not None and added_at > ts:
            return False
        old = self.removed.get(key)
        self.removed[key] = ts if old is None else max(old, ts)
        if added_at is None:
            return False
        del self.present[key]
        return True

    def __contains__(self, key) -> bool:
        return key in self.present

    def __len__(self) -> int:
        return len(self.present)

    def keys(self) -> list:
        return list(self.present)


@dataclass(frozen=True, order=True)
class Profile:
    updated_at_ms: int
    handle: str
    display_name: str
    verified: bool


def _engagement_key(e: common_pb2.Engagement) -> tuple[int, int]:
    return e.timestamp_ms, e.post_id


class UserState:
    __slots__ = ("following", "blocked", "muted", "muted_keywords", "subscriptions", "profile",
                 "engagements", "served", "served_at_ms", "served_requests")

    def __init__(self, max_served: int) -> None:
        self.following = EdgeSet()
        self.blocked = EdgeSet()
        self.muted = EdgeSet()
        self.muted_keywords = EdgeSet()   # keys are casefolded (matching is case-insensitive)
        self.subscriptions = EdgeSet()
        self.profile: Profile | None = None
        self.engagements: list[common_pb2.Engagement] = []   # oldest first by (time, post id)
        self.served: deque[int] = deque(maxlen=max_served)    # newest first
        self.served_at_ms: deque[int] = deque(maxlen=max_served)  # when each of `served` was served
        self.served_requests: deque[str] = deque(maxlen=_RECENT_REQUESTS)


# UserEvent field -> (UserState edge set attribute, add?)
_EDGE_EVENTS = {
    "follow": ("following", True), "unfollow": ("following", False),
    "block": ("blocked", True), "unblock": ("blocked", False),
    "mute": ("muted", True), "unmute": ("muted", False),
    "mute_keyword": ("muted_keywords", True), "unmute_keyword": ("muted_keywords", False),
    "subscribe": ("subscriptions", True), "unsubscribe": ("subscriptions", False),
}


def normalize_keyword(keyword: str) -> str:
    return " ".join(keyword.split()).casefold()


class UserStore:
    def __init__(self, limits: StoreLimits | None = None) -> None:
        self.limits = limits or StoreLimits()
        self.users: dict[int, UserState] = {}
        self.follower_counts: dict[int, int] = {}
        self.refused_engagements = 0

    def clear(self) -> None:
        """Forget everything (the log this store was built from is gone: it is rebuilt)."""
        self.__init__(self.limits)  # type: ignore[misc]

    def _state(self, user_id: int) -> UserState:
        state = self.users.get(user_id)
        if state is None:
            state = self.users[user_id] = UserState(self.limits.max_served_per_user)
        return state

    def get(self, user_id: int) -> UserState | None:
        return self.users.get(user_id)

    # ---- users topic -------------------------------------------------------------------------

    def apply_user_event(self, event: events_pb2.UserEvent, now_ms: int) -> bool:
        kind = event.WhichOneof("event")
        ts = event.timestamp_ms or now_ms
        state = self._state(event.user_id)
        if kind == "profile":
            p = event.profile
            new = Profile(ts, p.handle, p.display_name, p.verified)
            if state.profile is not None and state.profile >= new:
                return False
            state.profile = new
            return True
        attr, is_add = _EDGE_EVENTS[kind]
        key = getattr(event, kind)
        if attr == "muted_keywords":
            key = normalize_keyword(key)
        if not key:  # an id of 0 or a blank keyword names nothing
            return False
        edges: EdgeSet = getattr(state, attr)
        changed = edges.add(key, ts) if is_add else edges.remove(key, ts)
        if changed and attr == "following":
            self.follower_counts[key] = self.follower_counts.get(key, 0) + (1 if is_add else -1)
            if not self.follower_counts[key]:
                del self.follower_counts[key]
        return changed

    # ---- engagements topic ---------------------------------------------------------------------

    def add_engagement(self, engagement: common_pb2.Engagement, now_ms: int) -> bool:
        ts = engagement.timestamp_ms
        if ts < now_ms - self.limits.retention_ms or ts > now_ms + self.limits.future_skew_ms:
            self.refused_engagements += 1
            return False
        seq = self._state(engagement.user_id).engagements
        key = _engagement_key(engagement)
        lo = bisect.bisect_left(seq, key, key=_engagement_key)
        hi = bisect.bisect_right(seq, key, lo=lo, key=_engagement_key)
        if any(seq[i] == engagement for i in range(lo, hi)):
            return False  # redelivered
        seq.insert(hi, engagement)
        if len(seq) > self.limits.max_engagements_per_user:
            del seq[0]
        return True

    # ---- served topic ----------------------------------------------------------------------------

    def add_served(self, event: events_pb2.ServedEvent, now_ms: int) -> bool:
        if event.served_at_ms and event.served_at_ms < now_ms - self.limits.retention_ms:
            return False
        state = self._state(event.user_id)
        if event.request_id:
            if event.request_id in state.served_requests:
                return False
            state.served_requests.append(event.request_id)
        # Newest first: this request's ids (in feed order) go before everything served earlier.
        state.served.extendleft(reversed(event.post_ids))
        state.served_at_ms.extendleft([event.served_at_ms or now_ms] * len(event.post_ids))
        return True

    # ---- expiry ------------------------------------------------------------------------------------

    def trim(self, now_ms: int) -> int:
        """Drop engagements older than the retention window; returns how many."""
        cutoff = (now_ms - self.limits.retention_ms, 0)
        dropped = 0
        for state in self.users.values():
            seq = state.engagements
            if seq and seq[0].timestamp_ms < cutoff[0]:
                i = bisect.bisect_left(seq, cutoff, key=_engagement_key)
                del seq[:i]
                dropped += i
        return dropped

    # ---- reads ---------------------------------------------------------------------------------

    def following(self, user_id: int) -> dict:
        """The user's following set as a dict (ordered by first follow, O(1) membership)."""
        state = self.users.get(user_id)
        return state.following.present if state is not None else {}

    def followed_back(self, user_id: int, following: Iterable[int]) -> list[int]:
        """Of `following` (accounts `user_id` follows), those that follow `user_id`, in the same
        order: one membership test per entry, so a bounded list bounds the work."""
        users = self.users
        return [f for f in following if (state := users.get(f)) is not None and user_id in state.following]

    def follower_count(self, user_id: int) -> int:
        return self.follower_counts.get(user_id, 0)

    def is_known(self, user_id: int) -> bool:
        return user_id in self.users or user_id in self.follower_counts

    def sizes(self) -> dict[str, int]:
        states = self.users.values()
        return {
            "users": len(self.users),
            "follow_edges": sum(len(s.following) for s in states),
            "engagements": sum(len(s.engagements) for s in states),
            "served_ids": sum(len(s.served) for s in states),
        }

    def snapshot(self) -> dict:
        """A comparable picture of the whole store (for tests)."""
        out = {}
        for uid, s in self.users.items():
            out[uid] = {
                "following": dict(s.following.present), "blocked": dict(s.blocked.present),
                "muted": dict(s.muted.present), "keywords": dict(s.muted_keywords.present),
                "subscriptions": dict(s.subscriptions.present), "profile": s.profile,
                "engagements": [e.SerializeToString(deterministic=True) for e in s.engagements],
                "served": list(zip(s.served, s.served_at_ms)),
            }
        return {"users": out, "followers": dict(self.follower_counts)}
