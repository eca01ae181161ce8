"""The demo's last step: posts published after training. A followed author of the viewer
posts twice, once on the viewer's loved topic and once on the disliked one; neither post id
was ever trained on, so where the two land in the feed shows what Phoenix v2 makes of a post
from its content alone (docs/phoenix.md, "Version 2")."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from foryou import snowflake, tls, topics
from foryou.feed import get_feed
from foryou.seed import publish_events
from foryou.world import World
from home_mixer.params import MAX_RESULT_SIZE
from foryou_protos import common_pb2, events_pb2, phoenix_pb2, phoenix_pb2_grpc, thunder_pb2, thunder_pb2_grpc


@dataclass(frozen=True)
class FreshPost:
    post: common_pb2.Post
    topic: str
    loved: bool


def fresh_posts(world: World, viewer_id: int, now_ms: int) -> list[FreshPost]:
    """Two new posts by the viewer's first followed author (not blocked or muted): one on the
    viewer's best-loved topic, one on the least liked. Empty if the viewer follows nobody."""
    taste = world.user(viewer_id).taste
    authors = sorted(world.follows[viewer_id] - world.blocks[viewer_id] - world.mutes[viewer_id])
    if not authors:
        return []
    out = []
    for i, (topic, loved) in enumerate(((int(taste.argmax()), True), (int(taste.argmin()), False))):
        words = world.topic_words[topic]
        text = f"Just posted: {words[0]} and {words[3]}, {words[4]} #{world.topic_names[topic]}"
        post = common_pb2.Post(post_id=snowflake.make_id(now_ms, 900 + i), author_id=authors[0],
                               created_at_ms=now_ms, text=text)
        out.append(FreshPost(post, world.topic_names[topic], loved))
    return out


async def publish_and_wait(bootstrap: str, thunder: str, phoenix: str, posts: list[common_pb2.Post],
                           timeout_s: float = 60.0) -> None:
    """Publish the posts to the posts topic and wait until Thunder serves them and Phoenix's
    corpus has grown by as many (its content vectors and semantic ids are computed then)."""
    async with tls.channel(phoenix) as channel:
        info = phoenix_pb2_grpc.PhoenixServiceStub(channel).ModelInfo
        before = (await info(phoenix_pb2.ModelInfoRequest(), timeout=10)).corpus_size
        await publish_events(bootstrap, [(topics.POSTS, events_pb2.PostEvent(created=p)) for p in posts], len(posts))
        deadline = time.monotonic() + timeout_s
        async with tls.channel(thunder) as thunder_channel:
            get_posts = thunder_pb2_grpc.ThunderServiceStub(thunder_channel).GetPosts
            while True:
                found = await get_posts(thunder_pb2.GetPostsRequest(post_ids=[p.post_id for p in posts]), timeout=10)
                size = (await info(phoenix_pb2.ModelInfoRequest(), timeout=10)).corpus_size
                if not found.missing_post_ids and size >= before + len(posts):
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError("thunder and phoenix did not ingest the new posts in time")
                await asyncio.sleep(0.25)


async def fresh_post_lines(world: World, viewer_id: int, bootstrap: str, addresses: dict[str, str]) -> list[str]:
    """Publish the two posts, then say where each landed: its rank among every scored
    candidate (a debug feed of the most posts a request may ask for, unrecorded, without the
    DPP selection) with its favorite prediction, and whether the viewer's real feed has it."""
    fresh = fresh_posts(world, viewer_id, snowflake.now_ms())
    if not fresh:
        return [f"  user {viewer_id} follows nobody: no fresh post to show"]
    await publish_and_wait(bootstrap, addresses["thunder"], addresses["phoenix"], [f.post for f in fresh])
    home_mixer = addresses["home-mixer"]
    everything = await get_feed(home_mixer, viewer_id, params={"result_size": MAX_RESULT_SIZE, "top_k": MAX_RESULT_SIZE},
                                disabled_components=["DppDiversityFilter", "RecordServed"])
    feed = await get_feed(home_mixer, viewer_id, debug=True)
    scored = {p.post_id: (i, p) for i, p in enumerate(everything.scored_posts, 1)}
    in_feed = {p.post_id: i for i, p in enumerate(feed.scored_posts, 1)}
    removed_by = {r.post_id: r.removed_by for r in feed.debug.removed}
    author = world.user(fresh[0].post.author_id).handle
    lines = [f"  @{author} (followed by @{world.user(viewer_id).handle}) posted twice after training:"]
    for f in fresh:
        post_id = f.post.post_id
        taste = "loved" if f.loved else "least liked"
        if post_id in scored:
            rank, post = scored[post_id]
            where = (f"ranked {rank} of {len(everything.scored_posts)} candidates, favorite "
                     f"{post.predictions.get('favorite', 0.0):.3f}")
        else:
            where = "not among the scored candidates"
        if post_id in in_feed:
            where += f"; in the feed at {in_feed[post_id]} of {len(feed.scored_posts)}"
        else:
            where += f"; not in the {len(feed.scored_posts)}-post feed ({removed_by.get(post_id, 'below the cut')})"
        lines.append(f"    #{f.topic} ({taste} topic): {where}")
    return lines
