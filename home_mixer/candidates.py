"""The For You candidates as one columnar batch (candidate_pipeline's ColumnBatch): every
column a HomeMixer component reads or writes, with its type and what it reads as before a
component wrote it. Each component declares which of these it reads and writes.

Ids are int64 (snowflake post ids and user ids stay below 2**63). A column nobody wrote reads
as its default; the defaults are chosen so that "not known" is never "safe": `core_data` 0 is
CORE_UNKNOWN, which CoreDataHydrationFilter and VisibilityFilter remove."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Column, ColumnBatch
from foryou_protos import common_pb2
from home_mixer.params import ACTION_NAMES

IN_NETWORK = "in_network"
OUT_OF_NETWORK = "out_of_network"

# core_data: what is known of a post's core fields.
CORE_UNKNOWN = 0   # not hydrated (Thunder did not answer, no cached copy)
CORE_FOUND = 1
CORE_MISSING = 2   # Thunder answered and does not know the post

NUM_OUTPUTS = len(ACTION_NAMES)

I64, F32, F64 = np.int64, np.float32, np.float64

SCHEMA: dict[str, Column] = {
    # Sources.
    "post_id": Column(I64, doc="snowflake id"),
    "author_id": Column(I64),
    "source": Column(object, "", doc="name of the source that produced it"),
    "in_network": Column(np.bool_, False, doc="the viewer follows the author"),
    "retrieval_score": Column(F32, doc="Phoenix retrieval similarity (out-of-network)"),
    # Core data (ThunderSource for in-network posts, CoreDataHydrator for the others).
    "core_data": Column(np.int8, CORE_UNKNOWN, doc="CORE_UNKNOWN / CORE_FOUND / CORE_MISSING"),
    "created_at_ms": Column(I64),
    "text": Column(object, ""),
    "in_reply_to_post_id": Column(I64),
    "in_reply_to_user_id": Column(I64),
    "conversation_id": Column(I64),
    "repost_of_post_id": Column(I64),
    "repost_of_user_id": Column(I64),
    "quote_of_post_id": Column(I64),
    "photo_count": Column(np.int32),
    "video_duration_ms": Column(I64),
    "subscriber_only": Column(np.bool_, False),
    "deleted": Column(np.bool_, False),
    "label_mask": Column(np.uint32, 0, doc="bit v set: foryou.VisibilityLabel v"),
    "author_handle": Column(object, ""),
    "author_verified": Column(np.bool_, False),
    "author_follower_count": Column(I64),
    "reposted_author_handle": Column(object, ""),
    "impression_count": Column(I64, doc="times Thunder saw it served"),
    # Viewer-relative facts.
    "viewer_subscribes": Column(np.bool_, False, doc="the viewer subscribes to the author"),
    "visibility_reason": Column(object, "", doc="softer labels kept, e.g. 'misinformation'"),
    # Phoenix.
    "predictions": Column(F32, 0.0, (NUM_OUTPUTS,), doc="[n, num_outputs] in ACTION_NAMES order"),
    "scored_at_ms": Column(I64, 0, doc="when Phoenix scored it; 0 = no predictions"),
    "content_vector": Column(F32, None, doc="[n, d] content embedding; absent when the model has none"),
    # Scores.
    "weighted_score": Column(F64),
    "diversity_multiplier": Column(F64, 1.0),
    "oon_factor": Column(F64, 1.0),
    "score": Column(F64),
}

# What Thunder's post columns fill (ThunderSource, CoreDataHydrator): one set, one place.
CORE_COLUMNS = (
    "core_data", "author_id", "created_at_ms", "text", "in_reply_to_post_id", "in_reply_to_user_id",
    "conversation_id", "repost_of_post_id", "repost_of_user_id", "quote_of_post_id", "photo_count",
    "video_duration_ms", "subscriber_only", "deleted", "label_mask",
)
AUTHOR_COLUMNS = ("author_handle", "author_verified", "author_follower_count", "reposted_author_handle")


class PostBatch(ColumnBatch):
    SCHEMA = SCHEMA


def label_mask(labels) -> int:
    mask = 0
    for label in labels:
        mask |= 1 << int(label)
    return mask


def label_names(mask: int) -> list[str]:
    return [common_pb2.VisibilityLabel.Name(v).lower() for v in common_pb2.VisibilityLabel.values()
            if v and mask >> v & 1]


def ranked_post_ids(batch: PostBatch) -> np.ndarray:
    """A repost is judged as its original post."""
    repost = batch["repost_of_post_id"]
    return np.where(repost != 0, repost, batch["post_id"])


def ranked_author_ids(batch: PostBatch) -> np.ndarray:
    repost, original_author = batch["repost_of_post_id"], batch["repost_of_user_id"]
    return np.where((repost != 0) & (original_author != 0), original_author, batch["author_id"])


RELATED_ID_COLUMNS = ("post_id", "repost_of_post_id", "in_reply_to_post_id")


def related_id_hit(batch: PostBatch, ids: np.ndarray) -> np.ndarray:
    """Is the post, the post it reposts or the post it replies to in `ids`? Seeing any of them
    counts as seeing this one."""
    hit = np.zeros(len(batch), dtype=bool)
    if len(ids) == 0:
        return hit
    for name in RELATED_ID_COLUMNS:
        column = batch[name]
        hit |= (column != 0) & np.isin(column, ids)
    return hit


def ancestors_of(post_id: int, in_reply_to_post_id: int, conversation_id: int) -> tuple[int, ...]:
    """Nearest first: the post replied to, then the conversation root."""
    chain: list[int] = []
    for ancestor in (in_reply_to_post_id, conversation_id):
        if ancestor and ancestor != post_id and ancestor not in chain:
            chain.append(ancestor)
    return tuple(chain)


def id_array(ids) -> np.ndarray:
    """A set / frozenset / list of ids as an int64 array (for np.isin)."""
    return np.fromiter(ids, dtype=I64, count=len(ids))


def align(keys: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, at): for each wanted id, whether it is in `keys` and at which position."""
    keys = np.asarray(keys, dtype=I64)
    if len(keys) == 0:
        return np.zeros(len(wanted), dtype=bool), np.zeros(len(wanted), dtype=np.intp)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    positions = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
    return sorted_keys[positions] == wanted, order[positions]
