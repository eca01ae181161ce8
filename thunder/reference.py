"""The in-network query by brute force: docs/thunder.md read literally (per author, newest
first, eligible, capped; merge; truncate), over every stored post. It is what the fast path
(query.py) must answer, kept simple enough to check by reading; tests and benchmarks compare
the two. Not covered: `video_only` (whether a repost is a video depends on arrival order) and
`max_scan_per_author` (give the store a limit above any timeline's length)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from thunder.query import InNetworkQuery
from thunder.records import StoredPost

if TYPE_CHECKING:
    from thunder.post_store import PostStore


def reference_in_network(store: PostStore, q: InNetworkQuery) -> list[int]:
    """The post ids `store.in_network(q)` must return, in order."""
    if q.video_only:
        raise ValueError("the reference does not answer video_only queries")
    limits = store.query_limits
    out: list[StoredPost] = []
    for author in q.following:
        mine = sorted((r for r in store.posts.values() if r.author_id == author and not r.deleted),
                      key=lambda r: r.created_at_ms, reverse=True)
        fresh = [r for r in mine if r.created_at_ms >= q.min_created_at_ms and r.post_id not in q.exclude]
        out += [r for r in fresh if r.is_original][:limits.max_originals_per_author]
        out += [r for r in fresh if not r.is_original and _eligible(store, r, q)][:limits.max_secondary_per_author]
    out.sort(key=lambda r: r.created_at_ms, reverse=True)
    return [r.post_id for r in out[:q.max_results]]


def _eligible(store: PostStore, r: StoredPost, q: InNetworkQuery) -> bool:
    """A repost unless of the viewer's own post; a reply to an original post, or to a reply to
    the conversation root when addressed to an account the viewer follows."""
    if not r.reply_to_post_id:
        return r.repost_of_user_id != q.viewer_id
    parent = store.posts.get(r.reply_to_post_id)
    if parent is None or parent.deleted:
        return False
    if parent.is_original:
        return True
    return bool(r.conversation_id) and parent.reply_to_post_id == r.conversation_id and \
        r.reply_to_user_id in q.following_set
