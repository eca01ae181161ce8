"""Stored posts as a columnar answer (thunder.proto `PostColumns`): what GetInNetworkPosts and
HydratePosts return.

Each post's column values are decoded from its stored wire once and kept (`RowCache`, checked
against the record's current wire, so a delete or label, which rewrites it, is seen at once):
its numbers as one fixed-width record of bytes, its text apart. An answer joins the rows'
records and reads them back as one numpy record array (a transpose at C speed, not a Python
conversion per value), each column written as array bytes (foryou/packed.py); the author
profile columns are joined from the user store and the impression counts from the post store
(they change with every serving, so they are never cached)."""
from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

import numpy as np

from foryou.packed import field_number, packed
from foryou_protos import common_pb2, thunder_pb2
from thunder.records import StoredPost
from thunder.user_store import UserStore

# The PostColumns numeric fields, in row-tuple order, with their array types.
_NUMERIC: tuple[tuple[str, type], ...] = (
    ("post_ids", np.uint64), ("author_ids", np.uint64), ("created_at_ms", np.int64),
    ("in_reply_to_post_ids", np.uint64), ("in_reply_to_user_ids", np.uint64), ("conversation_ids", np.uint64),
    ("repost_of_post_ids", np.uint64), ("repost_of_user_ids", np.uint64), ("quote_of_post_ids", np.uint64),
    ("photo_counts", np.uint32), ("video_duration_ms", np.int64), ("subscriber_only", np.bool_),
    ("deleted", np.bool_), ("label_masks", np.uint32),
)
# A row's numbers as stored: 8 bytes each, signed where the field is (sfixed64), else unsigned.
_ROW = np.dtype([(name, "<i8" if dtype is np.int64 else "<u8") for name, dtype in _NUMERIC])
_PACK_ROW = struct.Struct("<" + "".join("q" if dtype is np.int64 else "Q" for _, dtype in _NUMERIC)).pack
_FIELD = {name: field_number(thunder_pb2.PostColumns, name) for name, _ in _NUMERIC}
_FIELD.update({name: field_number(thunder_pb2.PostColumns, name)
               for name in ("author_verified", "author_follower_counts", "impression_counts")})


def _label_mask(labels) -> int:
    mask = 0
    for label in labels:
        mask |= 1 << label
    return mask


class RowCache:
    """post id -> (wire it was decoded from, (numbers as a `_ROW` record of bytes, text)).
    Bounded: cleared when full (rows are cheap to decode again; a clear costs one decode per
    post afterwards)."""

    def __init__(self, max_entries: int = 500_000) -> None:
        self.max_entries = max_entries
        self._rows: dict[int, tuple[bytes, tuple]] = {}

    def row(self, rec: StoredPost) -> tuple:
        hit = self._rows.get(rec.post_id)
        if hit is not None and hit[0] is rec.wire:
            return hit[1]
        m = rec.message
        numbers = _PACK_ROW(m.post_id, m.author_id, m.created_at_ms, m.in_reply_to_post_id, m.in_reply_to_user_id,
                            m.conversation_id, m.repost_of_post_id, m.repost_of_user_id, m.quote_of_post_id,
                            m.photo_count, m.video_duration_ms, m.subscriber_only, m.deleted, _label_mask(m.labels))
        row = (numbers, m.text)
        if len(self._rows) >= self.max_entries:
            self._rows.clear()
        self._rows[rec.post_id] = (rec.wire, row)
        return row


def post_columns(recs: Sequence[StoredPost], rows: RowCache, users: UserStore,
                 impressions: Mapping[int, int]) -> thunder_pb2.PostColumns:
    """`impressions`: post id -> times served (PostStore.impressions); absent = never."""
    answer = thunder_pb2.PostColumns()
    if not recs:
        return answer
    numbers, texts = zip(*(rows.row(rec) for rec in recs))
    table = np.frombuffer(b"".join(numbers), dtype=_ROW)
    wire = b"".join(packed(_FIELD[name], table[name].astype(dtype)) for name, dtype in _NUMERIC)
    # Profiles are looked up once per distinct author, then spread to the rows.
    reposts = np.flatnonzero(table["repost_of_post_ids"])
    people, at = np.unique(np.concatenate([table["author_ids"], table["repost_of_user_ids"][reposts]]),
                           return_inverse=True)
    handles, verified, followers = zip(*(_profile(users, user) for user in people.tolist()))
    by_author, by_original = at[:len(recs)], at[len(recs):]
    wire += packed(_FIELD["author_verified"], np.array(verified, dtype=np.bool_)[by_author])
    wire += packed(_FIELD["author_follower_counts"], np.array(followers, dtype=np.uint64)[by_author])
    wire += packed(_FIELD["impression_counts"],
                   np.array([impressions.get(rec.post_id, 0) for rec in recs], dtype=np.uint64))
    answer.MergeFromString(wire)
    answer.texts.extend(texts)
    handle_of = np.array(handles, dtype=object)
    answer.author_handles.extend(handle_of[by_author].tolist())
    reposted = np.full(len(recs), "", dtype=object)
    reposted[reposts] = handle_of[by_original]
    answer.reposted_author_handles.extend(reposted.tolist())
    return answer


def _profile(users: UserStore, user_id: int) -> tuple[str, bool, int]:
    """(handle, verified, follower count); empty for an unknown user."""
    if not user_id:
        return "", False, 0
    state = users.get(user_id)
    profile = state.profile if state is not None else None
    followers = users.follower_count(user_id)
    if profile is None:
        return "", False, followers
    return profile.handle, profile.verified, followers


def posts_from_columns(columns: thunder_pb2.PostColumns) -> list[common_pb2.Post]:
    """The core fields of each row as a foryou.Post (tools and tests; the serving path reads
    the columns as they are)."""
    labels = [v for v in common_pb2.VisibilityLabel.values() if v]
    return [common_pb2.Post(
        post_id=row[0], author_id=row[1], created_at_ms=row[2], text=row[3], in_reply_to_post_id=row[4],
        in_reply_to_user_id=row[5], conversation_id=row[6], repost_of_post_id=row[7], repost_of_user_id=row[8],
        quote_of_post_id=row[9], photo_count=row[10], video_duration_ms=row[11], subscriber_only=row[12],
        deleted=row[13], labels=[v for v in labels if row[14] >> v & 1])
        for row in zip(columns.post_ids, columns.author_ids, columns.created_at_ms, columns.texts,
                       columns.in_reply_to_post_ids, columns.in_reply_to_user_ids, columns.conversation_ids,
                       columns.repost_of_post_ids, columns.repost_of_user_ids, columns.quote_of_post_ids,
                       columns.photo_counts, columns.video_duration_ms, columns.subscriber_only, columns.deleted,
                       columns.label_masks)]
