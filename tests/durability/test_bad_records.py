"""Malformed and absurd records produced to every topic: Thunder and the Phoenix corpus keep
serving, no bad record changes their state, and each is counted under its reason."""
from __future__ import annotations

import copy

import pytest
from aiokafka import AIOKafkaProducer

from tests.durability.conftest import start_consumers
from tests.durability.helpers import follow, post_event, publish, sample
from tests.waiting import eventually
from foryou import topics
from foryou.broker import create_topics
from foryou.event_rules import MAX_TEXT_CHARS
from foryou.health import check as health_check
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2

USER, AUTHOR, SENTINEL_USER = 880_001, 880_002, 880_003


def _bad_suite(now: int) -> list[tuple[str, bytes | None, bytes, str]]:
    """(topic, key, value, reason) for every case."""
    def rec(topic, message, reason, key=None):
        return topic, topics.key_for(topic, message) if key is None else key, message.SerializeToString(), reason

    future_post = post_event(AUTHOR, now)
    future_post.created.post_id = make_id(now + 3_600_000, 9)
    big = post_event(AUTHOR)
    big.created.text = "x" * 300_000
    long_text = post_event(AUTHOR)
    long_text.created.text = "x" * (MAX_TEXT_CHARS + 1)
    zero_author, ones_author = post_event(AUTHOR), post_event(AUTHOR)
    zero_author.created.author_id, ones_author.created.author_id = 0, 2**64 - 1
    far_future = post_event(AUTHOR)
    far_future.created.created_at_ms = now + 100 * 365 * 86_400_000
    engagement = common_pb2.Engagement(user_id=USER, post_id=make_id(now - 1000, 1), post_author_id=AUTHOR,
                                       actions=[common_pb2.FAVORITE], timestamp_ms=now - 1000)
    served = events_pb2.ServedEvent(user_id=USER, request_id="bad", post_ids=[make_id(now - 1000, 2)],
                                    served_at_ms=now)
    return [
        (topics.POSTS, b"1", b"\xff\x00 not a PostEvent", "undecodable"),
        (topics.POSTS, b"1", b"", "empty"),
        rec(topics.POSTS, big, "too_large"),
        rec(topics.POSTS, long_text, "too_long"),
        rec(topics.POSTS, future_post, "future_id"),
        rec(topics.POSTS, far_future, "future_timestamp"),
        rec(topics.POSTS, zero_author, "bad_id"),
        rec(topics.POSTS, ones_author, "bad_id"),
        rec(topics.POSTS, post_event(AUTHOR), "bad_key", key=b"424242"),
        rec(topics.USERS, follow(USER, AUTHOR, now + 100 * 365 * 86_400_000), "future_timestamp"),
        rec(topics.USERS, events_pb2.UserEvent(user_id=USER, timestamp_ms=now, block=2**64 - 1), "bad_id"),
        rec(topics.USERS, events_pb2.UserEvent(user_id=USER, timestamp_ms=now, mute_keyword="k" * 5000), "too_long"),
        rec(topics.USERS, follow(USER, AUTHOR), "bad_key", key=b"7"),
        rec(topics.ENGAGEMENTS, copy.deepcopy(engagement), "bad_key", key=b"7"),
        rec(topics.ENGAGEMENTS, common_pb2.Engagement(**{**_fields(engagement), "timestamp_ms": now + 10**9}),
            "future_timestamp"),
        rec(topics.ENGAGEMENTS, common_pb2.Engagement(**{**_fields(engagement), "actions": [1] * 500}), "too_many"),
        (topics.ENGAGEMENTS, str(USER).encode(), served.SerializeToString(), "wrong_type"),
        (topics.SERVED, str(USER).encode(), engagement.SerializeToString(), "wrong_type"),
        rec(topics.SERVED, events_pb2.ServedEvent(user_id=USER, request_id="many", post_ids=[served.post_ids[0]] * 5000),
            "too_many"),
        rec(topics.SERVED, events_pb2.ServedEvent(user_id=USER, request_id="future",
                                                  post_ids=[make_id(now + 3_600_000, 3)]), "future_id"),
    ]


@pytest.fixture(scope="module")
async def kafka(memory_broker) -> str:
    """A broker of this module's own: the suite's shared topics stay free of these records."""
    await create_topics(memory_broker.bootstrap_servers)
    return memory_broker.bootstrap_servers


def _fields(message) -> dict:
    return {f.name: v for f, v in message.ListFields()}


def _thunder_state(thunder) -> tuple:
    posts = {pid: p.wire for pid, p in thunder.posts.posts.items()}
    users = thunder.users.snapshot()
    users["users"].pop(SENTINEL_USER, None)
    users["followers"].pop(AUTHOR + 1, None)
    return posts, users


async def test_bad_records_change_nothing_and_are_counted(kafka):
    thunder, feeder, index = await start_consumers(kafka)
    producer = AIOKafkaProducer(bootstrap_servers=kafka, max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        now = now_ms()
        good = post_event(AUTHOR)
        await publish(producer, topics.USERS, follow(USER, AUTHOR))
        await publish(producer, topics.POSTS, good)
        await eventually(lambda: good.created.post_id in thunder.posts.posts and good.created.post_id in index,
                         what="the good post")
        state_before, corpus_before = _thunder_state(thunder), set(index.posts()[0].tolist())
        suite = _bad_suite(now)
        counts_before = {(t, r): sample("foryou_refused_records_total", service="thunder", topic=t, reason=r)
                         for t, _, _, r in suite}
        corpus_counts_before = {r: sample("foryou_refused_records_total", service="phoenix", topic="posts", reason=r)
                                for t, _, _, r in suite if t == topics.POSTS}
        applied_before = {t: sample("thunder_events_total", topic=t) for t in topics.TOPICS}
        for topic, key, value, _ in suite:
            await producer.send_and_wait(topic, value, key=key)
        # sentinels after the bad records: once they are applied, every bad one was read
        sentinel_post = post_event(AUTHOR + 1)
        await publish(producer, topics.POSTS, sentinel_post)
        await publish(producer, topics.USERS, follow(SENTINEL_USER, AUTHOR + 1))
        await eventually(lambda: sentinel_post.created.post_id in thunder.posts.posts
                         and sentinel_post.created.post_id in index
                         and thunder.users.get(SENTINEL_USER) is not None, what="the sentinels")

        posts_after, users_after = _thunder_state(thunder)
        posts_after.pop(sentinel_post.created.post_id)
        assert (posts_after, users_after) == state_before
        assert set(index.posts()[0].tolist()) - {sentinel_post.created.post_id} == corpus_before
        expected: dict = {}
        for topic, _, _, reason in suite:
            expected[(topic, reason)] = expected.get((topic, reason), 0) + 1
        for (topic, reason), n in expected.items():
            got = sample("foryou_refused_records_total", service="thunder", topic=topic, reason=reason)
            assert got - counts_before[(topic, reason)] == n, (topic, reason)
            if topic == topics.POSTS:
                got = sample("foryou_refused_records_total", service="phoenix", topic="posts", reason=reason)
                assert got - corpus_counts_before[reason] == n, ("phoenix", reason)
        # refused records are not counted as applied: only the two sentinels were
        assert sample("thunder_events_total", topic="posts") - applied_before["posts"] == 1
        assert sample("thunder_events_total", topic="users") - applied_before["users"] == 1
        assert sample("thunder_events_total", topic="engagements") == applied_before["engagements"]
        assert await health_check(thunder.address) == 1  # SERVING
    finally:
        await producer.stop()
        await feeder.stop()
        await thunder.stop()


async def test_unknown_enum_values_are_mapped_not_refused(kafka):
    thunder, feeder, index = await start_consumers(kafka)
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        now = now_ms()
        e = common_pb2.Engagement(user_id=USER + 10, post_id=make_id(now - 1000, 5), post_author_id=AUTHOR,
                                  actions=[common_pb2.FAVORITE, 99], surface=99, timestamp_ms=now - 1000)
        await publish(producer, topics.ENGAGEMENTS, e)
        state = await eventually(lambda: thunder.users.get(USER + 10), what="the engagement")
        stored = state.engagements[-1]
        assert stored.surface == common_pb2.SURFACE_UNSPECIFIED
        assert list(stored.actions) == [common_pb2.FAVORITE, common_pb2.ACTION_UNSPECIFIED]
    finally:
        await producer.stop()
        await feeder.stop()
        await thunder.stop()
