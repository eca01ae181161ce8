"""UserStore: graph edges (last writer wins), profiles, engagements and served ids."""
from __future__ import annotations

import random

from foryou_protos import common_pb2, events_pb2
from thunder.settings import HOUR_MS, StoreLimits
from thunder.user_store import EdgeSet, UserStore

NOW = 1_790_000_000_000


def user_event(user: int, ts: int, **event) -> events_pb2.UserEvent:
    return events_pb2.UserEvent(user_id=user, timestamp_ms=ts, **event)


def engagement(user: int, post_id: int, ts: int, *actions) -> common_pb2.Engagement:
    return common_pb2.Engagement(user_id=user, post_id=post_id, post_author_id=post_id % 97 + 1,
                                 actions=list(actions) or [common_pb2.FAVORITE],
                                 surface=common_pb2.HOME_FOR_YOU, timestamp_ms=ts)


def test_follow_unfollow_and_follower_counts():
    store = UserStore()
    store.apply_user_event(user_event(1, NOW, follow=10), NOW)
    store.apply_user_event(user_event(1, NOW + 1, follow=20), NOW)
    store.apply_user_event(user_event(2, NOW, follow=10), NOW)
    store.apply_user_event(user_event(2, NOW, follow=10), NOW)  # redelivered
    assert list(store.following(1)) == [10, 20]
    assert (store.follower_count(10), store.follower_count(20)) == (2, 1)
    store.apply_user_event(user_event(1, NOW + 2, unfollow=10), NOW)
    assert list(store.following(1)) == [20] and store.follower_count(10) == 1
    store.apply_user_event(user_event(1, NOW + 3, unfollow=99), NOW)  # never followed: no-op
    assert store.follower_count(99) == 0


def test_edges_converge_whatever_the_delivery_order():
    events = [user_event(1, NOW + t, **{kind: target}) for t, kind, target in [
        (1, "follow", 10), (2, "unfollow", 10), (3, "follow", 10), (4, "follow", 20), (5, "unfollow", 20),
        (1, "block", 30), (2, "mute", 40), (3, "unmute", 40), (4, "mute_keyword", "Spoilers"),
        (6, "unmute_keyword", "SPOILERS "), (7, "mute_keyword", "Cats"), (1, "subscribe", 50),
        (1, "profile", None), (9, "profile", None)]]
    events[12].profile.handle = "old"
    events[13].profile.handle = "new"

    def state(sequence):
        store = UserStore()
        for event in sequence:
            store.apply_user_event(event, NOW)
        return store.snapshot()

    expected = state(events)
    user = expected["users"][1]
    assert list(user["following"]) == [10] and expected["followers"] == {10: 1}
    assert list(user["blocked"]) == [30] and user["muted"] == {}
    assert list(user["keywords"]) == ["cats"] and list(user["subscriptions"]) == [50]
    assert user["profile"].handle == "new"
    rng = random.Random(3)
    for _ in range(30):
        shuffled = events + rng.sample(events, 5)
        rng.shuffle(shuffled)
        assert state(shuffled) == expected


def test_edge_set_tie_goes_to_the_remove():
    edges = EdgeSet()
    edges.add(5, 100)
    edges.remove(5, 100)
    edges.add(5, 100)
    assert 5 not in edges
    edges.add(5, 101)
    assert 5 in edges


def test_engagements_are_ordered_capped_deduplicated_and_retention_bounded():
    store = UserStore(StoreLimits(retention_ms=HOUR_MS, max_engagements_per_user=3))
    es = [engagement(1, 100 + i, NOW - 10_000 + i * 1000) for i in range(5)]
    for e in [es[2], es[0], es[4], es[1], es[3], es[4]]:  # out of order, one redelivered
        store.add_engagement(e, NOW)
    assert [e.post_id for e in store.get(1).engagements] == [102, 103, 104]  # newest 3, oldest first
    assert not store.add_engagement(engagement(1, 200, NOW - HOUR_MS - 1), NOW)
    assert store.trim(NOW + HOUR_MS - 6500) == 2  # window now starts at NOW - 6500
    assert [e.post_id for e in store.get(1).engagements] == [104]


def test_engagement_fields_are_kept_as_published():
    store = UserStore()
    e = engagement(1, 555, NOW - 1, common_pb2.REPLY, common_pb2.DWELL)
    e.dwell_time_ms = 4200
    store.add_engagement(e, NOW)
    assert store.get(1).engagements == [e]


def test_served_ids_newest_first_bounded_and_redelivery_safe():
    store = UserStore(StoreLimits(max_served_per_user=5))
    first = events_pb2.ServedEvent(user_id=1, request_id="a", post_ids=[1, 2, 3], served_at_ms=NOW - 2)
    second = events_pb2.ServedEvent(user_id=1, request_id="b", post_ids=[4, 5, 6], served_at_ms=NOW - 1)
    store.add_served(first, NOW)
    store.add_served(second, NOW)
    store.add_served(second, NOW)  # redelivered
    assert list(store.get(1).served) == [4, 5, 6, 1, 2]
    assert list(store.get(1).served_at_ms) == [NOW - 1] * 3 + [NOW - 2] * 2    # when each was served
    store.add_served(events_pb2.ServedEvent(user_id=1, request_id="c", post_ids=[7]), NOW)
    assert store.get(1).served_at_ms[0] == NOW    # no time in the event: when Thunder read it


def test_followed_back_keeps_the_accounts_that_follow_the_user():
    store = UserStore()
    for user, ts, kind, target in [(1, 1, "follow", 10), (1, 2, "follow", 20), (1, 3, "follow", 30),
                                   (10, 4, "follow", 1), (30, 5, "follow", 1), (30, 6, "unfollow", 1),
                                   (40, 7, "follow", 1)]:
        store.apply_user_event(user_event(user, NOW + ts, **{kind: target}), NOW)
    # 1 follows 10, 20, 30: 10 follows back, 20 never did, 30 unfollowed; 40 follows 1 but is
    # not followed, and it is not in the list asked about.
    assert store.followed_back(1, store.following(1)) == [10]
    assert store.followed_back(1, [20, 99]) == []       # 99: a user Thunder never heard of
