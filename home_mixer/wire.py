"""Thunder's post columns (thunder.proto `PostColumns`) as batch columns, and back.

One place maps wire fields to column names (WIRE_FIELDS), so ThunderSource, CoreDataHydrator,
VisibilityHydrator and the safety cache read posts the same way."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from foryou_protos import common_pb2, thunder_pb2
from home_mixer.candidates import CORE_FOUND, SCHEMA, label_mask

# column name -> PostColumns field
WIRE_FIELDS: dict[str, str] = {
    "post_id": "post_ids", "author_id": "author_ids", "created_at_ms": "created_at_ms", "text": "texts",
    "in_reply_to_post_id": "in_reply_to_post_ids", "in_reply_to_user_id": "in_reply_to_user_ids",
    "conversation_id": "conversation_ids", "repost_of_post_id": "repost_of_post_ids",
    "repost_of_user_id": "repost_of_user_ids", "quote_of_post_id": "quote_of_post_ids",
    "photo_count": "photo_counts", "video_duration_ms": "video_duration_ms",
    "subscriber_only": "subscriber_only", "deleted": "deleted", "label_mask": "label_masks",
    "author_handle": "author_handles", "author_verified": "author_verified",
    "author_follower_count": "author_follower_counts", "reposted_author_handle": "reposted_author_handles",
    "impression_count": "impression_counts",
}
# The columns a post lookup fills (post id included).
POST_COLUMNS = (*WIRE_FIELDS, "core_data")


def _array(values, name: str) -> np.ndarray:
    dtype = SCHEMA[name].dtype
    if dtype is object:
        array = np.empty(len(values), dtype=object)
        array[:] = list(values)
        return array
    return np.array(values, dtype=dtype)


def columns_from_wire(posts: thunder_pb2.PostColumns) -> dict[str, np.ndarray]:
    """Every post column, `core_data` CORE_FOUND (Thunder answered with the post)."""
    n = len(posts.post_ids)
    columns = {name: _array(getattr(posts, field), name) for name, field in WIRE_FIELDS.items()}
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"Thunder's PostColumns.{WIRE_FIELDS[name]} has {len(values)} rows for {n} posts")
    columns["core_data"] = np.full(n, CORE_FOUND, dtype=np.int8)
    return columns


def wire_from_posts(posts: Iterable[common_pb2.Post], authors: Mapping[int, thunder_pb2.Author] | None = None,
                    impressions: Mapping[int, int] | None = None) -> thunder_pb2.PostColumns:
    """Posts (their authors' profiles, their impression counts) as PostColumns: what Thunder
    sends; tests build their inputs with it."""
    authors, impressions = authors or {}, impressions or {}
    wire = thunder_pb2.PostColumns()
    for post in posts:
        author, original = authors.get(post.author_id), authors.get(post.repost_of_user_id)
        wire.post_ids.append(post.post_id)
        wire.author_ids.append(post.author_id)
        wire.created_at_ms.append(post.created_at_ms)
        wire.texts.append(post.text)
        wire.in_reply_to_post_ids.append(post.in_reply_to_post_id)
        wire.in_reply_to_user_ids.append(post.in_reply_to_user_id)
        wire.conversation_ids.append(post.conversation_id)
        wire.repost_of_post_ids.append(post.repost_of_post_id)
        wire.repost_of_user_ids.append(post.repost_of_user_id)
        wire.quote_of_post_ids.append(post.quote_of_post_id)
        wire.photo_counts.append(post.photo_count)
        wire.video_duration_ms.append(post.video_duration_ms)
        wire.subscriber_only.append(post.subscriber_only)
        wire.deleted.append(post.deleted)
        wire.label_masks.append(label_mask(post.labels))
        wire.author_handles.append(author.handle if author else "")
        wire.author_verified.append(author.verified if author else False)
        wire.author_follower_counts.append(author.follower_count if author else 0)
        wire.reposted_author_handles.append(original.handle if original and post.repost_of_post_id else "")
        wire.impression_counts.append(impressions.get(post.post_id, 0))
    return wire


def columns_from_posts(posts: Iterable[common_pb2.Post],
                       authors: Mapping[int, thunder_pb2.Author] | None = None) -> dict[str, np.ndarray]:
    return columns_from_wire(wire_from_posts(posts, authors))
