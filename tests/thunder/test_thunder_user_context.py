"""GetUserContext with the in-network query it may carry (one call for both)."""
from __future__ import annotations

from foryou.snowflake import now_ms
from foryou_protos import events_pb2, thunder_pb2
from thunder.post_store import PostStore
from thunder.service import ThunderHandlers
from thunder.settings import HOUR_MS, QueryLimits
from thunder.user_store import UserStore
from tests.thunder.thunder_helpers import created, post


def test_user_context_carries_the_in_network_answer_when_asked():
    """One call for both: the posts are GetInNetworkPosts' answer over the context's own
    following list (a following list or user id in the sub-request is not read), absent when
    not asked for, present (empty) for a user who follows nobody."""
    now = now_ms()
    posts, users = PostStore(), UserStore()
    handlers = ThunderHandlers(posts, users, QueryLimits(max_following=2), clock=lambda: now)
    viewer, following = 1, [10, 11, 12]                      # 10 is the oldest follow: not read
    for i, author in enumerate(following):
        users.apply_user_event(events_pb2.UserEvent(user_id=viewer, timestamp_ms=now + i, follow=author), now)
        posts.apply(created(post(author, now - 1000 + i)), now)
        posts.apply(created(post(author, now - 5 * HOUR_MS)), now)   # older than max_age_ms below
    posts.apply(created(post(99, now - 10)), now)             # not followed
    asked = thunder_pb2.GetInNetworkPostsRequest(user_id=99, following_user_ids=[99], max_results=5,
                                                 max_age_ms=HOUR_MS)
    context = handlers.get_user_context(thunder_pb2.GetUserContextRequest(user_id=viewer, in_network=asked))
    alone = handlers.get_in_network_posts(thunder_pb2.GetInNetworkPostsRequest(
        user_id=viewer, max_results=5, max_age_ms=HOUR_MS)).posts
    assert list(context.following_user_ids) == [11, 12]
    assert context.HasField("in_network_posts") and context.in_network_posts == alone
    assert sorted(alone.author_ids) == [11, 12] and len(alone.post_ids) == 2
    plain = handlers.get_user_context(thunder_pb2.GetUserContextRequest(user_id=viewer))
    assert not plain.HasField("in_network_posts")
    nobody = handlers.get_user_context(thunder_pb2.GetUserContextRequest(user_id=7, in_network=asked))
    assert nobody.HasField("in_network_posts") and len(nobody.in_network_posts.post_ids) == 0
