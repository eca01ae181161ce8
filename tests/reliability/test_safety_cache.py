"""The safety cache: bounded, time-limited, fresh answers win, metrics count what happened."""
from __future__ import annotations

import prometheus_client

from foryou_protos import common_pb2
from home_mixer.query import UserFeatures
from home_mixer.safety_cache import POSTS, USERS, SafetyCache
from home_mixer.wire import columns_from_posts


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sample(name: str, **labels) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_copies_expire_are_bounded_and_later_answers_win():
    clock = Clock()
    cache = SafetyCache(ttl_s=300, max_users=2, max_posts=10, timer=clock)
    hits, misses = sample("foryou_home_mixer_cache_hits_total", kind=USERS), sample(
        "foryou_home_mixer_cache_misses_total", kind=USERS)
    by_size = sample("foryou_home_mixer_cache_evictions_total", kind=USERS, reason="size")
    expired = sample("foryou_home_mixer_cache_evictions_total", kind=POSTS, reason="expired")
    cache.put_features(1, UserFeatures(blocked=frozenset({9})))
    assert cache.features(1).blocked == {9} and cache.features(2) is None
    cache.put_features(2, UserFeatures())
    cache.put_features(3, UserFeatures())      # over max_users: the oldest goes
    assert cache.features(1) is None
    assert sample("foryou_home_mixer_cache_evictions_total", kind=USERS, reason="size") == by_size + 1
    assert sample("foryou_home_mixer_cache_hits_total", kind=USERS) == hits + 1
    assert sample("foryou_home_mixer_cache_misses_total", kind=USERS) == misses + 2

    cache.put_posts(columns_from_posts([common_pb2.Post(post_id=5, author_id=7, text="hi")]))
    cache.put_posts(columns_from_posts([common_pb2.Post(post_id=5, author_id=7, text="hi", deleted=True,
                                                        labels=[common_pb2.SPAM])]))  # a later answer wins
    found, columns = cache.posts([6, 5], ["deleted", "label_mask", "text"])
    assert found.tolist() == [False, True]
    assert columns["deleted"][1] and columns["label_mask"][1] == 1 << common_pb2.SPAM and columns["text"][1] == "hi"
    clock.now += 301                           # past the TTL: gone
    assert cache.posts([5], ["deleted"])[0].tolist() == [False]
    cache.put_posts(columns_from_posts([]))    # a write sweeps the expired entries
    assert sample("foryou_home_mixer_cache_evictions_total", kind=POSTS, reason="expired") == expired + 1


def test_ttl_zero_disables_the_cache():
    cache = SafetyCache(ttl_s=0)
    cache.put_features(1, UserFeatures())
    cache.put_posts(columns_from_posts([common_pb2.Post(post_id=5)]))
    assert cache.features(1) is None and not cache.posts([5], ["deleted"])[0].any() and len(cache) == 0


def test_posts_are_bounded_oldest_answer_first():
    cache = SafetyCache(ttl_s=300, max_posts=3, timer=Clock())
    by_size = sample("foryou_home_mixer_cache_evictions_total", kind=POSTS, reason="size")
    cache.put_posts(columns_from_posts([common_pb2.Post(post_id=i) for i in (1, 2)]))
    cache.put_posts(columns_from_posts([common_pb2.Post(post_id=i) for i in (2, 3, 4)]))  # over 3: the first answer goes
    assert cache.posts([1, 2, 3, 4], [])[0].tolist() == [False, True, True, True]
    # Only 1 was still the first answer's (2 had a newer copy).
    assert sample("foryou_home_mixer_cache_evictions_total", kind=POSTS, reason="size") == by_size + 1
