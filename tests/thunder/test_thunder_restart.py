"""Thunder as a real process (`python -m foryou.cli thunder ...`): killed and restarted, it
rebuilds exactly the same state from Kafka."""
from __future__ import annotations

import grpc

from foryou import topics
from foryou.broker import free_port
from foryou.process import ServiceProcess
from foryou.snowflake import now_ms
from foryou_protos import common_pb2, events_pb2, thunder_pb2, thunder_pb2_grpc
from tests.thunder.thunder_helpers import created, deleted, labelled, post, publish, reply
from tests.waiting import eventually


async def snapshot(address: str, viewer: int, authors: list[int], post_ids: list[int]) -> tuple:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = thunder_pb2_grpc.ThunderServiceStub(channel)
        return (
            await stub.GetInNetworkPosts(thunder_pb2.GetInNetworkPostsRequest(user_id=viewer)),
            await stub.GetInNetworkPosts(thunder_pb2.GetInNetworkPostsRequest(user_id=viewer, is_video_request=True)),
            await stub.GetPosts(thunder_pb2.GetPostsRequest(post_ids=post_ids)),
            await stub.GetAuthors(thunder_pb2.GetAuthorsRequest(user_ids=authors)),
            await stub.GetUserContext(thunder_pb2.GetUserContextRequest(user_id=viewer)),
        )


async def test_killed_and_restarted_thunder_rebuilds_the_same_state(kafka, producer, ids):
    now = now_ms()
    viewer, authors = ids, [ids + 1 + i for i in range(5)]
    ps = [post(a, now - 100_000 + i * 1000, video_duration_ms=(i % 3) * 1000)
          for i, a in enumerate(authors * 6)]
    ps += [reply(authors[1], now - 500, ps[0]), reply(authors[2], now - 400, ps[-1])]
    await publish(producer, topics.POSTS, *map(created, ps), deleted(ps[3], now), labelled(ps[4], [common_pb2.SPAM], now))
    await publish(producer, topics.USERS, *[events_pb2.UserEvent(user_id=viewer, timestamp_ms=now + i, follow=a)
                                            for i, a in enumerate(authors)],
                  events_pb2.UserEvent(user_id=viewer, timestamp_ms=now + 10, unfollow=authors[4]),
                  events_pb2.UserEvent(user_id=authors[0], timestamp_ms=now,
                                       profile=events_pb2.Profile(handle="first", verified=True)))
    await publish(producer, topics.ENGAGEMENTS, *[
        common_pb2.Engagement(user_id=viewer, post_id=p.post_id, post_author_id=p.author_id,
                              actions=[common_pb2.FAVORITE], timestamp_ms=now - 1000 + i)
        for i, p in enumerate(ps[:10])])
    await publish(producer, topics.SERVED, events_pb2.ServedEvent(
        user_id=viewer, request_id="r", post_ids=[p.post_id for p in ps[:5]], served_at_ms=now))

    port = free_port()
    address = f"127.0.0.1:{port}"
    args = ["--port", str(port), "--metrics-port", "0", "--kafka-bootstrap", kafka]
    ids_ = [p.post_id for p in ps]
    process = ServiceProcess("thunder", args, address).start()
    try:
        await process.wait_ready(60)

        async def settled():
            state = await snapshot(address, viewer, authors, ids_)
            return len(state[4].engagements) == 10 and len(state[4].served_post_ids) == 5 and state

        before = await eventually(settled, timeout_s=30)
        assert len(before[0].posts.post_ids) > 0 and len(before[1].posts.post_ids) > 0
        process.kill()
        process = ServiceProcess("thunder", args, address).start()
        await process.wait_ready(60)
        after = await snapshot(address, viewer, authors, ids_)  # SERVING means caught up: no polling
        assert after == before
    finally:
        process.stop()
