"""Thunder in-process against the real broker, called over real gRPC."""
from __future__ import annotations

import asyncio
import random

import grpc
import prometheus_client
import pytest

from foryou import topics
from foryou.broker import free_port
from foryou.health import check
from foryou.snowflake import now_ms
from foryou_protos import common_pb2, events_pb2, thunder_pb2, thunder_pb2_grpc
from grpc_health.v1 import health_pb2
from thunder.app import ThunderApp
from thunder.columns import posts_from_columns
from thunder.post_store import PostStore
from thunder.service import InvalidArgument, ThunderHandlers
from thunder.user_store import UserStore
from thunder.settings import HOUR_MS, StoreLimits
from tests.thunder.thunder_helpers import created, deleted, labelled, post, publish, reply, repost, thunder_settings
from tests.waiting import eventually


def in_network(stub, user, following=(), **kw):
    return stub.GetInNetworkPosts(thunder_pb2.GetInNetworkPostsRequest(
        user_id=user, following_user_ids=list(following), **kw))


async def in_network_posts(stub, user, following=(), **kw) -> list[common_pb2.Post]:
    return posts_from_columns((await in_network(stub, user, following, **kw)).posts)


async def post_ids(stub, user, following=(), **kw) -> list[int]:
    return list((await in_network(stub, user, following, **kw)).posts.post_ids)


async def test_published_posts_are_served_newest_first(producer, stub, ids):
    now = now_ms()
    a, b, stranger = ids + 1, ids + 2, ids + 3
    posts = [post(a, now - 9000), post(b, now - 7000), post(a, now - 3000), post(stranger, now - 1000),
             post(b, now - 5000)]
    await publish(producer, topics.POSTS, *map(created, posts))
    expected = [posts[2].post_id, posts[4].post_id, posts[1].post_id, posts[0].post_id]
    assert await eventually(lambda: _equals(post_ids(stub, ids, [a, b]), expected))


async def _equals(coro, expected):
    return (await coro) == expected


async def test_deletes_hide_posts_and_lookups_say_deleted(producer, stub, ids):
    now = now_ms()
    keep, gone = post(ids + 1, now - 2000), post(ids + 1, now - 1000)
    await publish(producer, topics.POSTS, created(keep), created(gone))
    await eventually(lambda: _equals(post_ids(stub, ids, [ids + 1]), [gone.post_id, keep.post_id]))
    await publish(producer, topics.POSTS, deleted(gone, now))
    await eventually(lambda: _equals(post_ids(stub, ids, [ids + 1]), [keep.post_id]))
    found = await stub.GetPosts(thunder_pb2.GetPostsRequest(post_ids=[gone.post_id, keep.post_id]))
    assert [(p.post_id, p.deleted) for p in found.posts] == [(gone.post_id, True), (keep.post_id, False)]


async def test_get_posts_in_request_order_with_missing_ids(producer, stub, ids):
    now = now_ms()
    p1, p2 = post(ids + 1, now - 2000, photo_count=2), post(ids + 2, now - 1000, video_duration_ms=1500)
    await publish(producer, topics.POSTS, created(p1), created(p2), labelled(p2, [common_pb2.NSFW], now))
    unknown = p2.post_id + 12345
    request = thunder_pb2.GetPostsRequest(post_ids=[p2.post_id, unknown, p1.post_id])

    async def labelled_and_found():
        reply_ = await stub.GetPosts(request)
        return len(reply_.posts) == 2 and list(reply_.posts[0].labels) and reply_

    found = await eventually(labelled_and_found)
    assert list(found.missing_post_ids) == [unknown]
    expected_p2 = common_pb2.Post()
    expected_p2.CopyFrom(p2)
    expected_p2.labels.append(common_pb2.NSFW)
    assert list(found.posts) == [expected_p2, p1]


async def test_user_context_authors_and_stored_following(producer, stub, ids):
    now = now_ms()
    viewer, alice, bob = ids + 1, ids + 2, ids + 3
    await publish(producer, topics.USERS,
                  events_pb2.UserEvent(user_id=alice, timestamp_ms=now - 9,
                                       profile=events_pb2.Profile(handle="alice", display_name="Alice", verified=True)),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 8, follow=alice),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 7, follow=bob),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 6, block=ids + 4),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 5, mute=ids + 5),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 4, mute_keyword="Spoilers"),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 3, subscribe=alice),
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now - 2, unfollow=bob),
                  # Alice follows back; bob does too, but the viewer no longer follows him.
                  events_pb2.UserEvent(user_id=alice, timestamp_ms=now - 2, follow=viewer),
                  events_pb2.UserEvent(user_id=bob, timestamp_ms=now - 2, follow=viewer))
    engagements = [common_pb2.Engagement(user_id=viewer, post_id=ids + 100 + i, post_author_id=alice,
                                         actions=[common_pb2.FAVORITE, common_pb2.REPLY][: i + 1],
                                         surface=common_pb2.HOME_FOR_YOU, timestamp_ms=now - 1000 + i)
                   for i in range(3)]
    await publish(producer, topics.ENGAGEMENTS, *engagements)
    await publish(producer, topics.SERVED,
                  events_pb2.ServedEvent(user_id=viewer, request_id="r1", post_ids=[7, 8], served_at_ms=now - 50),
                  events_pb2.ServedEvent(user_id=viewer, request_id="r2", post_ids=[9], served_at_ms=now - 10))
    p_alice, p_bob = post(alice, now - 500), post(bob, now - 400)
    await publish(producer, topics.POSTS, created(p_alice), created(p_bob))

    request = thunder_pb2.GetUserContextRequest(user_id=viewer)

    async def complete():
        context = await stub.GetUserContext(request)
        return (len(context.engagements) == 3 and len(context.served_post_ids) == 3
                and len(context.subscribed_author_ids) == 1 and len(context.mutual_follow_user_ids) == 1 and context)

    context = await eventually(complete)
    assert list(context.following_user_ids) == [alice]
    assert list(context.blocked_user_ids) == [ids + 4] and list(context.muted_user_ids) == [ids + 5]
    assert list(context.muted_keywords) == ["spoilers"] and list(context.subscribed_author_ids) == [alice]
    assert list(context.served_post_ids) == [9, 7, 8]
    assert list(context.served_at_ms) == [now - 10, now - 50, now - 50]
    assert list(context.mutual_follow_user_ids) == [alice]
    assert list(context.engagements) == engagements
    last_two = await stub.GetUserContext(thunder_pb2.GetUserContextRequest(user_id=viewer, max_engagements=2))
    assert list(last_two.engagements) == engagements[1:]

    authors = await stub.GetAuthors(thunder_pb2.GetAuthorsRequest(user_ids=[alice, ids + 999]))
    assert [(a.user_id, a.handle, a.display_name, a.verified, a.follower_count) for a in authors.authors] == [
        (alice, "alice", "Alice", True, 1)]
    assert list(authors.missing_user_ids) == [ids + 999]

    # No following list in the request: Thunder uses its own graph (alice only; bob unfollowed).
    await eventually(lambda: _equals(post_ids(stub, viewer), [p_alice.post_id]))
    unknown = await stub.GetUserContext(thunder_pb2.GetUserContextRequest(user_id=ids + 777))
    assert unknown.user_id == ids + 777 and not unknown.following_user_ids and not unknown.HasField("profile")


async def test_malformed_record_between_good_ones_does_not_stop_ingestion(producer, thunder, stub, ids):
    def malformed():
        return prometheus_client.REGISTRY.get_sample_value(
            "thunder_malformed_records_total", {"topic": "posts"}) or 0.0

    before_count, before_metric = thunder.ingestor.malformed, malformed()
    now = now_ms()
    first, second = post(ids + 1, now - 2000), post(ids + 1, now - 1000)
    await publish(producer, topics.POSTS, created(first))
    await producer.send_and_wait(topics.POSTS, b"\xff\x00 definitely not a PostEvent", key=b"1")
    await producer.send_and_wait(topics.POSTS, events_pb2.PostEvent().SerializeToString() or b"\x00", key=b"2")
    await publish(producer, topics.POSTS, created(second))
    await eventually(lambda: _equals(post_ids(stub, ids, [ids + 1]), [second.post_id, first.post_id]))
    assert thunder.ingestor.malformed - before_count == 2
    assert malformed() - before_metric == 2


async def test_out_of_order_and_duplicated_events_match_in_order_state(producer, stub, ids):
    now = now_ms()
    authors = [ids + 1, ids + 2, ids + 3]
    ps = [post(a, now - 60_000 + i * 997) for i, a in enumerate(authors * 4)]
    ps.append(reply(ids + 2, now - 1000, ps[0]))
    ps.append(repost(ids + 3, now - 900, ps[1]))
    events = [created(p) for p in ps] + [deleted(ps[4], now - 100), deleted(ps[5], now - 90),
                                         labelled(ps[6], [common_pb2.SPAM], now - 80),
                                         labelled(ps[6], [common_pb2.ABUSE], now - 70)]
    in_order = PostStore()
    for event in events:
        in_order.apply(event, now)
    shuffled = events + random.Random(5).sample(events, 6)
    random.Random(11).shuffle(shuffled)
    await publish(producer, topics.POSTS, *shuffled)

    want = [rec.message for rec in in_order.in_network(_local_query(authors, ids, now))]
    await eventually(lambda: _equals(in_network_posts(stub, ids, authors), want))
    lookup = await stub.GetPosts(thunder_pb2.GetPostsRequest(post_ids=[p.post_id for p in ps]))
    assert list(lookup.posts) == [in_order.get(p.post_id, now) for p in ps]


def _local_query(authors, viewer, now):
    from thunder.post_store import InNetworkQuery
    following = dict.fromkeys(authors)
    return InNetworkQuery(viewer_id=viewer, following=following, following_set=following,
                          min_created_at_ms=now - StoreLimits().retention_ms)


@pytest.mark.parametrize("request_, field", [
    (thunder_pb2.GetInNetworkPostsRequest(user_id=0), "user_id"),
    (thunder_pb2.GetInNetworkPostsRequest(user_id=1, max_age_ms=-5), "max_age_ms"),
    (thunder_pb2.GetInNetworkPostsRequest(user_id=1, exclude_post_ids=range(1, 10_002)), "exclude_post_ids"),
    (thunder_pb2.GetPostsRequest(post_ids=range(1, 5002)), "post_ids"),
    (thunder_pb2.GetAuthorsRequest(user_ids=range(1, 5002)), "user_ids"),
    (thunder_pb2.GetUserContextRequest(user_id=0), "user_id"),
])
async def test_invalid_requests_are_rejected_naming_the_field(stub, request_, field):
    method = {
        thunder_pb2.GetInNetworkPostsRequest: stub.GetInNetworkPosts,
        thunder_pb2.GetPostsRequest: stub.GetPosts,
        thunder_pb2.GetAuthorsRequest: stub.GetAuthors,
        thunder_pb2.GetUserContextRequest: stub.GetUserContext,
    }[type(request_)]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await method(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()


async def test_max_results_and_max_age(producer, stub, ids):
    now = now_ms()
    ps = [post(ids + 1 + i, now - 1000 * (i + 1)) for i in range(5)]  # newest first
    await publish(producer, topics.POSTS, *map(created, ps))
    following = [ids + 1 + i for i in range(5)]
    await eventually(lambda: _equals(post_ids(stub, ids, following), [p.post_id for p in ps]))
    assert await post_ids(stub, ids, following, max_results=2) == [ps[0].post_id, ps[1].post_id]
    assert await post_ids(stub, ids, following, max_age_ms=3500) == [p.post_id for p in ps[:3]]
    assert await post_ids(stub, ids, following, exclude_post_ids=[ps[1].post_id], max_results=2) == [
        ps[0].post_id, ps[2].post_id]


async def test_expired_posts_disappear_after_a_trim(kafka, producer, ids):
    skew = [0]  # the app's clock runs `skew` ms ahead of the wall clock
    app = ThunderApp(thunder_settings(kafka, store=StoreLimits(retention_ms=HOUR_MS), trim_interval_s=0.1),
                     clock=lambda: now_ms() + skew[0])
    await app.start()
    try:
        await app.wait_ready(60)
        now = now_ms()
        old, young = post(ids + 1, now - 10 * 60_000), post(ids + 1, now - 1000)
        await publish(producer, topics.POSTS, created(old), created(young))
        await eventually(lambda: old.post_id in app.posts.posts and young.post_id in app.posts.posts)
        skew[0] = HOUR_MS - 5 * 60_000  # `old` is now 65 minutes old, `young` 55
        await eventually(lambda: old.post_id not in app.posts.posts)  # dropped by the trim task
        assert young.post_id in app.posts.posts
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = thunder_pb2_grpc.ThunderServiceStub(channel)
            assert await post_ids(stub, ids, [ids + 1]) == [young.post_id]
            found = await stub.GetPosts(thunder_pb2.GetPostsRequest(post_ids=[old.post_id]))
            assert list(found.missing_post_ids) == [old.post_id]
    finally:
        await app.stop()


async def test_not_serving_until_caught_up():
    """With no reachable broker Thunder cannot replay, so it must stay NOT_SERVING."""
    app = ThunderApp(thunder_settings(f"127.0.0.1:{free_port()}"))
    await app.start()
    try:
        await asyncio.sleep(0.5)
        assert await check(app.address) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not app.ready.is_set()
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = thunder_pb2_grpc.ThunderServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetPosts(thunder_pb2.GetPostsRequest(post_ids=[1]))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await app.stop()


async def test_state_published_before_start_is_complete_when_serving(kafka, producer, ids):
    now = now_ms()
    ps = [post(ids + 1 + i % 7, now - 50_000 + i) for i in range(300)]
    await publish(producer, topics.POSTS, *map(created, ps))
    app = ThunderApp(thunder_settings(kafka))
    await app.start()
    try:
        await app.wait_ready(60)
        assert await check(app.address) == health_pb2.HealthCheckResponse.SERVING
        assert all(p.post_id in app.posts.posts for p in ps)  # no polling: ready means caught up
    finally:
        await app.stop()


async def test_overload_is_answered_with_resource_exhausted(kafka):
    app = ThunderApp(thunder_settings(kafka, max_concurrent_rpcs=1))
    await app.start()
    try:
        await app.wait_ready(60)
        async with grpc.aio.insecure_channel(app.address) as channel:
            stub = thunder_pb2_grpc.ThunderServiceStub(channel)
            request = thunder_pb2.GetPostsRequest(post_ids=range(1, 5001))
            results = await asyncio.gather(*(stub.GetPosts(request) for _ in range(64)), return_exceptions=True)
        codes = {r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results}
        assert codes == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    finally:
        await app.stop()


async def test_store_sizes_lag_and_event_counts_are_exported(producer, thunder, stub, ids):
    def sample(name, **labels):
        return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0

    events_before = sample("thunder_events_total", topic="posts")
    p = post(ids + 1, now_ms() - 1000)
    await publish(producer, topics.POSTS, created(p))
    await eventually(lambda: _equals(post_ids(stub, ids, [ids + 1]), [p.post_id]))
    sizes = thunder.export_stats()
    assert sample("thunder_store_size", kind="posts") == sizes["posts"] == len(thunder.posts.posts)
    assert sample("thunder_events_total", topic="posts") - events_before >= 1
    assert sample("thunder_consumer_lag_records", topic="posts") == 0
    assert sample("thunder_caught_up") == 1
    assert sample("foryou_grpc_requests_total", service="thunder", method="GetInNetworkPosts", code="OK") >= 1


async def test_ingestion_recovers_from_an_unexpected_failure(kafka, producer, ids):
    app = ThunderApp(thunder_settings(kafka))
    await app.start()
    try:
        await app.wait_ready(60)
        real_poll, failures = app.ingestor.reader.poll, []

        async def failing_once(max_records, timeout_ms):
            if not failures:
                failures.append(1)
                raise RuntimeError("injected ingestion failure")
            return await real_poll(max_records, timeout_ms)

        app.ingestor.reader.poll = failing_once
        p = post(ids + 1, now_ms() - 1000)
        await publish(producer, topics.POSTS, created(p))
        await eventually(lambda: p.post_id in app.posts.posts)
        assert failures and await check(app.address) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await app.stop()



def test_a_following_list_over_the_limit_reads_the_most_recent_follows():
    """Not INVALID_ARGUMENT (that lost the user's in-network posts for good): the last
    max_following entries, i.e. the most recent follows, are read; UserContext agrees."""
    from thunder.settings import QueryLimits

    now = now_ms()
    limits = QueryLimits(max_following=3)
    posts, users = PostStore(), UserStore()
    handlers = ThunderHandlers(posts, users, limits)
    viewer, following = 1, [10, 11, 12, 13]                  # follow order: 10 is the oldest
    for i, author in enumerate(following):
        users.apply_user_event(events_pb2.UserEvent(user_id=viewer, timestamp_ms=now + i, follow=author), now)
        posts.apply(created(post(author, now - 1000 + i)), now)

    def authors(request) -> list[int]:
        return sorted(handlers.get_in_network_posts(request).posts.author_ids)

    assert authors(thunder_pb2.GetInNetworkPostsRequest(user_id=viewer, following_user_ids=following)) == [11, 12, 13]
    assert authors(thunder_pb2.GetInNetworkPostsRequest(user_id=viewer)) == [11, 12, 13]  # Thunder's own graph
    context = handlers.get_user_context(thunder_pb2.GetUserContextRequest(user_id=viewer))
    assert list(context.following_user_ids) == [11, 12, 13]


def test_hydrate_posts_answers_core_data_visibility_and_authors_as_columns():
    now = now_ms()
    posts, users = PostStore(), UserStore()
    handlers = ThunderHandlers(posts, users, clock=lambda: now)
    users.apply_user_event(events_pb2.UserEvent(user_id=10, timestamp_ms=now, profile=events_pb2.Profile(
        handle="ten", verified=True)), now)
    users.apply_user_event(events_pb2.UserEvent(user_id=11, timestamp_ms=now, follow=10), now)
    original = post(10, now - 3000, subscriber_only=True, video_duration_ms=12_000)
    shared = repost(11, now - 2000, original)
    for event in (created(original), created(shared), labelled(original, [common_pb2.SPAM], now - 1000)):
        posts.apply(event, now)
    unknown = shared.post_id + 999
    reply_ = handlers.hydrate_posts(thunder_pb2.HydratePostsRequest(post_ids=[shared.post_id, unknown, original.post_id]))
    columns = reply_.posts
    assert list(reply_.missing_post_ids) == [unknown]
    assert list(columns.post_ids) == [shared.post_id, original.post_id]          # request order
    assert list(columns.repost_of_post_ids) == [original.post_id, 0]
    assert list(columns.label_masks) == [0, 1 << common_pb2.SPAM]                # the label, as a bit
    assert list(columns.subscriber_only) == [False, True] and list(columns.video_duration_ms) == [0, 12_000]
    assert list(columns.author_handles) == ["", "ten"] and list(columns.author_verified) == [False, True]
    assert list(columns.author_follower_counts) == [0, 1]
    assert list(columns.reposted_author_handles) == ["ten", ""]                  # the original author's handle
    assert posts_from_columns(columns)[1].labels == [common_pb2.SPAM]
    # A later label rewrites the stored post: the next answer has it (no stale cached row).
    posts.apply(labelled(original, [common_pb2.GORE], now - 500), now)
    again = handlers.hydrate_posts(thunder_pb2.HydratePostsRequest(post_ids=[original.post_id])).posts
    assert list(again.label_masks) == [1 << common_pb2.GORE]                    # a labelling replaces the labels
    with pytest.raises(InvalidArgument, match="post_ids"):
        handlers.hydrate_posts(thunder_pb2.HydratePostsRequest(post_ids=range(handlers.limits.max_lookup_ids + 1)))


def test_post_columns_keep_ids_past_two_to_the_63_and_each_rows_author():
    """Rows are stored as fixed-width records and profiles looked up per distinct author:
    unsigned ids keep their top bit, and every row gets its own author's profile."""
    now = now_ms()
    posts, users = PostStore(), UserStore()
    handlers = ThunderHandlers(posts, users, clock=lambda: now)
    big, small = 2**63 + 5, 12
    users.apply_user_event(events_pb2.UserEvent(user_id=big, timestamp_ms=now, profile=events_pb2.Profile(handle="big")), now)
    rows = [post(small, now - 3000), post(big, now - 2000, in_reply_to_user_id=2**64 - 1), post(small, now - 1000)]
    for p in rows:
        posts.apply(created(p), now)
    columns = handlers.hydrate_posts(thunder_pb2.HydratePostsRequest(post_ids=[p.post_id for p in rows])).posts
    assert list(columns.author_ids) == [small, big, small] and list(columns.in_reply_to_user_ids) == [0, 2**64 - 1, 0]
    assert list(columns.author_handles) == ["", "big", ""] and list(columns.created_at_ms) == [now - 3000, now - 2000, now - 1000]
