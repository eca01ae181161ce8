"""The synthetic world generator: deterministic, consistent, and with the planted signal."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from foryou import snowflake, topics
from foryou.world import DAY_MS, WorldConfig, generate_world
from foryou_protos import common_pb2

NOW_MS = 1_800_000_000_000
CONFIG = WorldConfig(num_users=200, days=1.0, impressions_per_user=60, seed=7, now_ms=NOW_MS)


@pytest.fixture(scope="module")
def world():
    return generate_world(CONFIG)


def _serialized(w):
    return [(topic, topics.encode(message)) for topic, message in w.events()]


def test_same_seed_same_world_and_other_seed_differs(world):
    again = generate_world(CONFIG)
    assert _serialized(again) == _serialized(world)
    assert [u.handle for u in again.users] == [u.handle for u in world.users]
    other = generate_world(WorldConfig(num_users=200, days=1.0, impressions_per_user=60, seed=8, now_ms=NOW_MS))
    assert _serialized(other) != _serialized(world)


def test_post_ids_encode_creation_time_and_posts_are_time_ordered(world):
    assert len(world.posts) > 100
    times = [p.created_at_ms for p in world.posts]
    assert times == sorted(times)
    assert len({p.post_id for p in world.posts}) == len(world.posts)
    for post in world.posts:
        assert snowflake.created_at_ms(post.post_id) == post.created_at_ms


def test_every_timestamp_lies_within_the_window(world):
    lo = NOW_MS - int(CONFIG.days * DAY_MS)
    stamps = [p.created_at_ms for p in world.posts]
    stamps += [e.timestamp_ms for e in world.user_events]
    stamps += [s.served_at_ms for s in world.served]
    stamps += [e.timestamp_ms for e in world.engagements]
    stamps += [e.deleted.deleted_at_ms for e in world.post_events if e.WhichOneof("event") == "deleted"]
    stamps += [e.labelled.labelled_at_ms for e in world.post_events if e.WhichOneof("event") == "labelled"]
    assert lo < min(stamps) and max(stamps) <= NOW_MS
    assert world.start_ms <= min(stamps)


def test_follower_counts_are_heavy_tailed_and_following_counts_vary(world):
    in_degree = Counter(a for followed in world.follows.values() for a in followed)
    counts = np.array([in_degree.get(u.user_id, 0) for u in world.users])
    assert counts.max() >= 5 * max(np.median(counts), 1)
    out_degree = np.array([len(f) for f in world.follows.values()])
    assert out_degree.min() >= 0 and np.percentile(out_degree, 90) >= 2 * np.percentile(out_degree, 10)
    assert all(u not in followed for u, followed in world.follows.items())


def test_favorites_are_more_likely_on_liked_topics(world):
    favorited = {(e.user_id, e.post_id) for e in world.engagements if common_pb2.FAVORITE in e.actions}
    liked, disliked = [], []
    for served in world.served:
        for post_id in served.post_ids:
            taste = world.topic_affinity(served.user_id, post_id)
            hit = (served.user_id, post_id) in favorited
            if taste > 1.0:
                liked.append(hit)
            elif taste < 0.0:
                disliked.append(hit)
    assert len(liked) > 200 and len(disliked) > 200
    assert np.mean(liked) > 3 * np.mean(disliked)
    negatives = {(e.user_id, e.post_id) for e in world.engagements if common_pb2.NOT_INTERESTED in e.actions}
    neg_taste = [world.topic_affinity(u, p) for u, p in negatives]
    fav_taste = [world.topic_affinity(u, p) for u, p in favorited]
    assert np.mean(neg_taste) < np.mean(fav_taste)


def test_every_engagement_follows_a_serving_of_its_post(world):
    served_at = {}
    for served in world.served:
        for post_id in served.post_ids:
            assert (served.user_id, post_id) not in served_at, "a post is served to a user at most once"
            served_at[(served.user_id, post_id)] = served.served_at_ms
    assert world.engagements
    for e in world.engagements:
        assert served_at[(e.user_id, e.post_id)] <= e.timestamp_ms
        assert world.post(e.post_id).author_id == e.post_author_id
        assert e.actions and e.dwell_time_ms > 0


def test_served_posts_existed_and_respect_the_users_settings(world):
    posts = {p.post_id: p for p in world.posts}
    setup_blocks = {(e.user_id, getattr(e, e.WhichOneof("event"))) for e in world.user_events
                    if e.WhichOneof("event") in ("block", "mute") and e.timestamp_ms <= world.start_ms + 1}
    assert setup_blocks
    for served in world.served:
        user = served.user_id
        for post_id in served.post_ids:
            post = posts[post_id]
            assert post.created_at_ms < served.served_at_ms
            assert post.author_id != user
            assert (user, post.author_id) not in setup_blocks
            if post.subscriber_only:
                assert post.author_id in world.subscriptions[user]
            text = post.text.lower()
            assert not any(word in text for word in world.muted_keywords[user])
    followed_share = np.mean([world.post(p).author_id in world.follows[s.user_id]
                              for s in world.served for p in s.post_ids])
    assert 0.2 < followed_share < 0.9  # a mix of in- and out-of-network


def test_post_links_point_to_earlier_posts_and_texts_carry_topic_words(world):
    posts = {p.post_id: p for p in world.posts}
    kinds = Counter()
    for post in world.posts:
        words = world.topic_words[world.post_topic[post.post_id]]
        assert sum(w in post.text for w in words) >= 3
        for parent_id in (post.in_reply_to_post_id, post.repost_of_post_id, post.quote_of_post_id):
            if parent_id:
                assert posts[parent_id].created_at_ms < post.created_at_ms
        if post.in_reply_to_post_id:
            kinds["reply"] += 1
            parent = posts[post.in_reply_to_post_id]
            assert post.in_reply_to_user_id == parent.author_id
            assert post.conversation_id == (parent.conversation_id or parent.post_id)
        if post.repost_of_post_id:
            kinds["repost"] += 1
            assert not posts[post.repost_of_post_id].repost_of_post_id
            assert post.repost_of_user_id == posts[post.repost_of_post_id].author_id
        kinds["video"] += post.video_duration_ms > 0
        kinds["deleted"] += post.deleted
        kinds["labelled"] += len(post.labels) > 0
    assert all(kinds[k] > 0 for k in ("reply", "repost", "video", "deleted", "labelled")), kinds


def _timestamp(topic, message) -> int:
    if topic == topics.SERVED:
        return message.served_at_ms
    if topic == topics.POSTS:
        event = getattr(message, message.WhichOneof("event"))
        return next(getattr(event, f) for f in ("created_at_ms", "deleted_at_ms", "labelled_at_ms") if hasattr(event, f))
    return message.timestamp_ms


def test_events_are_in_time_order_and_round_trip_through_the_topics(world):
    events = list(world.events())
    assert len(events) == world.num_events()
    by_topic = Counter(topic for topic, _ in events)
    assert set(by_topic) == set(topics.TOPICS)
    last = 0
    created = set()
    for topic, message in events:
        stamp = _timestamp(topic, message)
        assert stamp >= last
        last = stamp
        if topic == topics.POSTS:
            kind = message.WhichOneof("event")
            if kind == "created":
                created.add(message.created.post_id)
            else:
                assert getattr(message, kind).post_id in created  # never delete/label before create
        assert topics.decode(topic, topics.encode(message)) == message
        assert topics.key_for(topic, message)


def test_graph_reactions_become_user_events_and_ground_truth(world):
    blocks = [(e.user_id, e.block) for e in world.user_events if e.WhichOneof("event") == "block"]
    assert blocks
    for user, author in blocks:
        assert author in world.blocks[user]
        assert author not in world.follows[user]
    profiles = [e for e in world.user_events if e.WhichOneof("event") == "profile"]
    assert {e.user_id for e in profiles} == {u.user_id for u in world.users}
