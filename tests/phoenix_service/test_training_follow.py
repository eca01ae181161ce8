"""Continuous training (phoenix/training/follow.py, window.py): the sliding window by event
time, the round trigger, and rounds that warm-start from the last checkpoint and codebook,
reading a real broker that keeps being written to (a module broker of its own, so the event
counts are exact)."""
from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace

import numpy as np
import pytest

from foryou import snowflake, topics
from foryou.broker import EmbeddedBroker, create_topics
from foryou.seed import publish_events
from foryou.world import WorldConfig, generate_world
from foryou_protos import common_pb2, events_pb2
from phoenix import checkpoints
from phoenix.training import follow, window
from phoenix.training.cli import FollowSettings, TrainSettings, recipe_of
from phoenix.training.event_log import collect

pytestmark = pytest.mark.slow  # trains: scheduled first (tests/conftest.py)

HOUR_MS = 3_600_000
T0 = 1_800_000_000_000


def _post(post_id, author=7, repost_of=0):
    return topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=post_id, author_id=author,
                                                                      repost_of_post_id=repost_of, text="t"))


def _engagement(post, t, user=1):
    return topics.ENGAGEMENTS, common_pb2.Engagement(user_id=user, post_id=post, post_author_id=7,
                                                     actions=[common_pb2.FAVORITE], timestamp_ms=t)


def _served(posts, t, user=1):
    return topics.SERVED, events_pb2.ServedEvent(user_id=user, post_ids=posts, served_at_ms=t)


def test_the_window_drops_what_is_older_than_the_newest_event_minus_its_length():
    old, engaged, original, fresh = (snowflake.make_id(T0 + h * HOUR_MS, i) for i, h in enumerate((0, 1, 2, 60)))
    first = collect([_post(old), _post(engaged), _post(original), _engagement(engaged, T0 + 2 * HOUR_MS),
                     _served([old, engaged], T0 + 3 * HOUR_MS)])
    w = window.trim(window.merge(window.empty(), first), 48 * HOUR_MS)
    assert len(w.engagements) == 1 and len(w.served) == 1 and len(w.posts) == 3  # nothing is old yet
    repost = snowflake.make_id(T0 + 61 * HOUR_MS, 9)
    later = collect([_post(fresh), _post(repost, repost_of=original), _engagement(engaged, T0 + 55 * HOUR_MS),
                     _engagement(fresh, T0 + 62 * HOUR_MS), _served([fresh], T0 + 62 * HOUR_MS)])
    w = window.trim(window.merge(w, later, deleted=[fresh]), 48 * HOUR_MS)
    # newest 62 h: events before 14 h are gone; the old post no kept event refers to is gone,
    # the engaged one and the reposted original stay (examples need their author and text)
    assert w.engagements.time.tolist() == [T0 + 55 * HOUR_MS, T0 + 62 * HOUR_MS]
    assert w.served.time.tolist() == [T0 + 62 * HOUR_MS] and w.served.posts.tolist() == [fresh]
    assert w.posts.ids.tolist() == sorted([engaged, original, fresh, repost])
    row, _ = w.posts.find([fresh])
    assert w.posts.deleted[row].tolist() == [True]  # a deletion that came after the post's round
    assert window.newest_ms(w) == T0 + 62 * HOUR_MS
    assert window.count_after(w, T0 + 55 * HOUR_MS) == 2


def test_a_late_record_is_put_in_time_order():
    p = snowflake.make_id(T0, 1)
    w = window.merge(collect([_post(p), _engagement(p, T0 + 10)]), collect([_engagement(p, T0 + 5)]))
    assert w.engagements.time.tolist() == [T0 + 5, T0 + 10]


def test_a_reset_log_empties_the_window(tmp_path):
    """The consumer saw the log replaced (foryou/kafka.py): the window holds only the new log's events."""
    p, q = snowflake.make_id(T0, 1), snowflake.make_id(T0, 2)
    follower = follow.Follower("ranker", recipe_of(_args(preset="tiny")), follow.FollowPlan(), tmp_path)
    follower.absorb(follow.Arrivals(collect([_post(p), _engagement(p, T0 + 1)]), np.zeros(0, np.uint64), False))
    follower.absorb(follow.Arrivals(collect([_post(q), _engagement(q, T0 + 2)]), np.zeros(0, np.uint64), True))
    assert follower.window.posts.ids.tolist() == [q] and follower.window.engagements.post.tolist() == [q]
    assert follower.pending() == 1 and follower.model.params is None  # nothing trained yet: a fresh model
    follower.model.trained_through_ms = T0 + 5  # as if a round had trained on events up to T0 + 5 ms
    follower.new_events = 0
    follower.absorb(follow.Arrivals(collect([_engagement(q, T0 + 3)]), np.zeros(0, np.uint64), False))
    assert follower.pending() == 1  # a late record counts: the model has not seen it


@pytest.fixture(scope="module")
async def own_kafka():
    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


def _args(**values) -> argparse.Namespace:
    settings = {**TrainSettings(checkpoint_dir="unused").model_dump(), **FollowSettings().model_dump()}
    return argparse.Namespace(**{**settings, "model": "ranker", **values})


def _split(events, cut_ms: int):
    """(before, after) the cut by each event's time (posts by creation)."""
    def at(topic, m):
        if topic == topics.POSTS:
            return snowflake.created_at_ms(m.created.post_id if m.WhichOneof("event") == "created"
                                           else m.deleted.post_id)
        return m.served_at_ms if topic == topics.SERVED else getattr(m, "timestamp_ms", 0)
    events = list(events)
    return [e for e in events if at(*e) < cut_ms], [e for e in events if at(*e) >= cut_ms]


async def _received(reader: follow.TopicReader, count: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while reader.inbox.received < count:
        assert time.monotonic() < deadline, f"{reader.inbox.received} of {count} records read"
        await asyncio.sleep(0.1)


async def test_rounds_start_when_enough_new_events_arrived_and_warm_start(own_kafka, tmp_path):
    world = generate_world(WorldConfig(num_users=60, days=1.0, impressions_per_user=40, seed=5))
    before, after = _split(world.events(), world.now_ms - 6 * HOUR_MS)
    await publish_events(own_kafka, before, len(before))
    (tmp_path / "ranker" / ".tmp-7-dead").mkdir(parents=True)  # a save killed half-way
    plan = follow.FollowPlan(interval_s=0.1, min_new_events=300, round_steps=12, keep_checkpoints=1)
    recipe = recipe_of(_args(preset="small", batch_size=32))
    follower = follow.Follower("ranker", recipe, plan, tmp_path, progress=lambda line: None)
    assert not (tmp_path / "ranker" / ".tmp-7-dead").exists()
    reader = follow.TopicReader(own_kafka, follow.Inbox()).start()
    try:
        await asyncio.to_thread(reader.caught_up.wait, 30)
        assert reader.inbox.received == len(before)
        follower.absorb(reader.inbox.take())
        assert follower.due()
        first = await asyncio.to_thread(follower.train_round)
        m1 = checkpoints.load_metrics(first)
        assert not follower.due() and follower.pending() == 0

        await publish_events(own_kafka, after, len(after))  # the consumer is still running
        await _received(reader, len(before) + len(after))
        follower.absorb(reader.inbox.take())
        new = sum(t in (topics.ENGAGEMENTS, topics.SERVED) for t, _ in after)
        assert follower.pending() == new > 0
        follower.plan = replace(plan, min_new_events=new + 1)
        assert not follower.due()
        follower.plan = replace(plan, min_new_events=new)
        assert follower.due()
        second = await asyncio.to_thread(follower.train_round)
    finally:
        reader.stop()
    assert second.step > first.step
    m2 = checkpoints.load_metrics(second)
    assert m2["follow"]["warm_start_from"] == first.checkpoint_id and m2["follow"]["new_events"] == new
    # warm: the second round starts where the first ended, well below a fresh model's loss
    assert m2["train"]["first_loss"] < m1["train"]["first_loss"] - 0.05, (m1["train"], m2["train"])
    assert [p.name for p in (tmp_path / "ranker").iterdir()] == [str(second.step)]  # keep_checkpoints=1
    book1, book2 = follower.model.codebook, checkpoints.load_codebook(second)
    assert book2 is not None and np.array_equal(book1.centroids, book2.centroids)

    # a restarted trainer resumes from the newest checkpoint and does not retrain what it saw
    again = follow.Follower("ranker", recipe, plan, tmp_path, progress=lambda line: None)
    assert (again.model.checkpoint_id, again.model.step, again.model.round) == (second.checkpoint_id, second.step, 2)
    again.absorb(follow.Arrivals(follower.window, np.zeros(0, np.uint64), reset=False))
    assert again.pending() == 0
