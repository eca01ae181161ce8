"""Impression counts: PostStore.impressions, counted from the `served` topic through the
ingestor (a redelivered request once), bounded by the stored posts, sent in the post columns."""
from __future__ import annotations

from typing import NamedTuple

from foryou import topics
from foryou_protos import events_pb2, thunder_pb2
from thunder.ingest import Ingestor
from thunder.post_store import PostStore
from thunder.service import ThunderHandlers
from thunder.settings import StoreLimits
from thunder.user_store import UserStore
from tests.thunder.thunder_helpers import created, post, thunder_settings

NOW = 1_790_000_000_000


class Record(NamedTuple):
    key: bytes
    value: bytes
    partition: int = 0
    offset: int = 0


def served(user: int, request_id: str, *post_ids: int) -> Record:
    event = events_pb2.ServedEvent(user_id=user, request_id=request_id, post_ids=post_ids, served_at_ms=NOW - 100)
    return Record(topics.key_for(topics.SERVED, event), topics.encode(event))


def test_servings_count_once_per_request_and_only_for_stored_posts():
    posts, users = PostStore(), UserStore()
    ingestor = Ingestor(thunder_settings("127.0.0.1:1"), posts, users, clock=lambda: NOW)
    a, b = post(10, NOW - 5000), post(11, NOW - 4000)
    for p in (a, b):
        posts.apply(created(p), NOW)
    unknown = b.post_id + 1
    records = [served(1, "r1", a.post_id, b.post_id), served(2, "r2", a.post_id),
               served(1, "r1", a.post_id, b.post_id),        # redelivered: counted once
               served(1, "r3", unknown)]                     # not a stored post: not counted
    assert ingestor.apply_records(topics.SERVED, records) == 3
    # a: served to 1 (r1) and to 2 (r2) -> 2; b: r1 only -> 1.
    assert posts.impressions == {a.post_id: 2, b.post_id: 1}
    # HydratePosts carries them, in request order; a post never served has 0.
    c = post(12, NOW - 3000)
    posts.apply(created(c), NOW)
    handlers = ThunderHandlers(posts, users, clock=lambda: NOW)
    columns = handlers.hydrate_posts(thunder_pb2.HydratePostsRequest(post_ids=[b.post_id, c.post_id, a.post_id])).posts
    assert list(columns.impression_counts) == [1, 0, 2]


def test_the_replay_counts_servings_that_arrive_before_their_post():
    # During the replay topics interleave: a serving may be read before its post. Unknown ids
    # are counted until the replay ends, then the ones still unknown are dropped.
    posts = PostStore()
    a = post(10, NOW - 5000)
    posts.begin_bulk()
    assert posts.count_impressions([a.post_id, a.post_id + 1]) == 2
    posts.apply(created(a), NOW)
    posts.end_bulk()
    assert posts.impressions == {a.post_id: 1}


def test_counts_go_with_their_post_at_expiry():
    posts = PostStore(StoreLimits(retention_ms=10_000))
    old, new = post(10, NOW - 8000), post(10, NOW - 1000)
    for p in (old, new):
        posts.apply(created(p), NOW)
    posts.count_impressions([old.post_id, new.post_id, new.post_id])
    assert posts.trim(NOW + 5000) == 1                       # `old` is now beyond the 10 s window
    assert posts.impressions == {new.post_id: 2} and posts.sizes()["impression_counts"] == 1
