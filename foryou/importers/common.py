"""What every importer shares: an `ImportedData` (the four topics' messages), a `TimeMap`
that squeezes a long log into the services' retention window while keeping its order, how
impressions are grouped into served sessions, and writing to an event file or Kafka."""
from __future__ import annotations

import asyncio
import heapq
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2

HOUR_MS = 3600 * 1000
# Thunder and Phoenix keep about two days; an imported log ends a few minutes before "now"
# and spans a little less than that, so all of it is live when it is served right away.
DEFAULT_DAYS = 1.8
END_MARGIN_MS = 5 * 60 * 1000
# Impressions of one user less than this apart (in the source's own time) form one served
# feed request, of at most SESSION_SIZE posts.
SESSION_GAP_MS = 30 * 60 * 1000
SESSION_SIZE = 10


class ImportDataError(ValueError):
    """Bad input: the message names the file, the row and the column."""


@dataclass(frozen=True)
class TimeMap:
    """Linear map of source times [src_min, src_max] onto [end - span, end]: order and relative
    gaps are kept (ties stay ties), the whole log fits the retention window. A log shorter
    than the window is only shifted (never stretched)."""
    src_min: int
    src_max: int
    dst_start: int
    dst_end: int

    @classmethod
    def fit(cls, source_ms: Sequence[int], days: float = DEFAULT_DAYS, now_ms: int | None = None,
            keep: bool = False) -> "TimeMap":
        if not source_ms:
            raise ImportDataError("nothing to import: no rows")
        lo, hi = min(source_ms), max(source_ms)
        if keep:  # identity: the log's own times
            return cls(lo, hi, lo, hi)
        if days <= 0:
            raise ValueError("days must be positive")
        now = snowflake.now_ms() if now_ms is None else int(now_ms)
        end = now - END_MARGIN_MS
        return cls(lo, hi, end - min(int(days * 24 * HOUR_MS), hi - lo), end)

    def __call__(self, source_ms: int) -> int:
        if self.src_max == self.src_min:
            return self.dst_end
        frac = (source_ms - self.src_min) / (self.src_max - self.src_min)
        return self.dst_start + int(round(frac * (self.dst_end - self.dst_start)))

    def describe(self) -> str:
        if self.src_min == self.dst_start and self.src_max == self.dst_end:
            return "times kept as they are"
        if self.dst_end - self.dst_start == self.src_max - self.src_min:
            return f"times shifted to end at {_iso(self.dst_end)} (gaps kept)"
        return (f"times mapped onto the {(self.dst_end - self.dst_start) / 86_400_000:.2f} days before "
                f"{_iso(self.dst_end)} (x{self.scale:.0f} compressed, order kept)")

    @property
    def scale(self) -> float:
        """Source milliseconds per imported millisecond."""
        span = self.dst_end - self.dst_start
        return (self.src_max - self.src_min) / span if span else 1.0


@dataclass
class ImportedData:
    """The topics' messages of one import. `events()` yields them in time order."""
    source: str
    user_events: list[events_pb2.UserEvent] = field(default_factory=list)
    post_events: list[events_pb2.PostEvent] = field(default_factory=list)
    served: list[events_pb2.ServedEvent] = field(default_factory=list)
    engagements: list[common_pb2.Engagement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the import decided, for the summary
    item_posts: dict[Any, int] = field(default_factory=dict)  # the source's item id -> the post id minted for it

    def events(self) -> Iterator[tuple[str, Message]]:
        """(topic, message) in time order; ties: users, posts, served, engagements (a profile
        precedes the posts, a post precedes its impressions, an impression its engagement)."""
        streams = [
            ((e.timestamp_ms, 0, i, topics.USERS, e) for i, e in enumerate(self.user_events)),
            ((e.created.created_at_ms, 1, i, topics.POSTS, e) for i, e in enumerate(self.post_events)),
            ((e.served_at_ms, 2, i, topics.SERVED, e) for i, e in enumerate(self.served)),
            ((e.timestamp_ms, 3, i, topics.ENGAGEMENTS, e) for i, e in enumerate(self.engagements)),
        ]
        for _, _, _, topic, message in heapq.merge(*(sorted(s, key=lambda t: t[:3]) for s in streams),
                                                    key=lambda t: t[:3]):
            yield topic, message

    def num_events(self) -> int:
        return len(self.user_events) + len(self.post_events) + len(self.served) + len(self.engagements)

    def summary(self) -> str:
        users = sum(1 for e in self.user_events if e.WhichOneof("event") == "profile")
        impressions = sum(len(s.post_ids) for s in self.served)
        return (f"{self.source}: {users} profiles, {len(self.post_events)} posts, {len(self.served)} served "
                f"requests ({impressions} impressions), {len(self.engagements)} engagements "
                f"({self.num_events()} events)")


@dataclass(frozen=True)
class Impression:
    """One post shown to one user, in imported time, and what they did (maybe nothing)."""
    user_id: int
    post_id: int
    source_ms: int   # the source's own time, for the session gap
    time_ms: int     # imported time


def served_sessions(impressions: list[Impression], prefix: str, gap_ms: int = SESSION_GAP_MS,
                    size: int = SESSION_SIZE) -> list[events_pb2.ServedEvent]:
    """Group each user's impressions into feed requests: consecutive ones at most `gap_ms`
    apart in source time, at most `size` posts. A request is served 1 ms before its first
    impression, so the engagements it led to all come after it."""
    out: list[events_pb2.ServedEvent] = []
    ordered = sorted(impressions, key=lambda i: (i.user_id, i.source_ms, i.post_id))
    current: list[Impression] = []

    def flush() -> None:
        if current:
            out.append(events_pb2.ServedEvent(user_id=current[0].user_id, request_id=f"{prefix}-{len(out)}",
                                              post_ids=[i.post_id for i in current],
                                              served_at_ms=current[0].time_ms - 1))
            current.clear()

    for imp in ordered:
        if current and (imp.user_id != current[0].user_id or imp.source_ms - current[-1].source_ms > gap_ms
                        or len(current) >= size):
            flush()
        current.append(imp)
    flush()
    out.sort(key=lambda s: s.served_at_ms)
    return out


def profile_event(user_id: int, at_ms: int, handle: str, display_name: str) -> events_pb2.UserEvent:
    return events_pb2.UserEvent(user_id=user_id, timestamp_ms=at_ms,
                                profile=events_pb2.Profile(handle=handle, display_name=display_name))


def post_event(post_id: int, author_id: int, text: str, photo_count: int = 0,
               video_duration_ms: int = 0) -> events_pb2.PostEvent:
    return events_pb2.PostEvent(created=common_pb2.Post(
        post_id=post_id, author_id=author_id, created_at_ms=snowflake.created_at_ms(post_id), text=text,
        conversation_id=post_id, photo_count=photo_count, video_duration_ms=video_duration_ms))


class PostIds:
    """Mints distinct snowflake post ids: the creation time in the high bits, a sequence
    number in the low 22 bits (so two posts created in the same millisecond differ)."""

    def __init__(self) -> None:
        self._seq = 0

    def mint(self, created_ms: int) -> int:
        self._seq += 1
        return snowflake.make_id(created_ms, self._seq)


# ----------------------------------------------------------------------------- output


def write_event_file(data: ImportedData, path: str | Path) -> int:
    """Write atomically: a temporary file next to `path`, renamed over it when complete, so a
    failed import never leaves a partial event file behind."""
    from foryou.event_file import write_events

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        count = write_events(tmp, data.events())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def publish(data: ImportedData, bootstrap: str, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Send everything to Kafka. Kafka has no transaction here: on a failure the error says
    how many events were already sent (they stay on the topics)."""
    from foryou.seed import publish_events

    sent = [0]

    def track(done: int, total: int) -> None:
        sent[0] = done
        if progress:
            progress(done, total)

    try:
        return asyncio.run(publish_events(bootstrap, data.events(), data.num_events(), track))
    except Exception as exc:
        raise RuntimeError(f"publishing to Kafka at {bootstrap} failed after {sent[0]} of {data.num_events()} "
                           f"events were acknowledged (those stay on the topics): {exc!r}") from exc


class Progress:
    """Rows-read progress on stderr, at most every `every_s` seconds, and a final line."""

    def __init__(self, label: str, every_s: float = 2.0, out=sys.stderr) -> None:
        self.label, self.every_s, self.out = label, every_s, out
        self.started = self._last = time.monotonic()

    def __call__(self, rows: int, total: int | None = None, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < self.every_s:
            return
        self._last = now
        of = f"/{total}" if total else ""
        rate = rows / max(now - self.started, 1e-6)
        print(f"{self.label}: {rows}{of} rows ({rate:,.0f}/s)", file=self.out, flush=True)


def _iso(ms: int) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
