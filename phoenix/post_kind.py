"""A post's kind and media as three small codes: the ranker's post-kind input (docs/phoenix.md).

Columns of a `[N, 3]` int array, each code 0 = "missing" (an unknown post, or padding):

- photo: 1 no photo, 2 one photo, 3 two or more
- video: 1 no video, then the duration in buckets: up to 10 s (too short for a quality view,
  home_mixer/params.py `vqv_min_duration_ms`), up to 1 min, up to 5 min, longer
- kind: 1 original, 2 reply, 3 repost, 4 quote (a repost is a repost first, then a quote, then
  a reply: the Post proto's link fields, checked in that order)

`post_kind_codes` is the one place that computes them, from the Post proto's columns; training
(phoenix/training/event_log.py) and Phoenix's corpus (phoenix/server_corpus.py) both call it,
and `phoenix.content.ContentStore` keeps them per post (a repost without media of its own takes
its original's, as it takes the original's content vector).
"""
from __future__ import annotations

import numpy as np

PHOTO, VIDEO, KIND = 0, 1, 2   # columns
MISSING = 0
PHOTO_ROWS = 4                 # missing, none, one, several
VIDEO_EDGES_MS = (10_000, 60_000, 300_000)
VIDEO_ROWS = 2 + len(VIDEO_EDGES_MS) + 1   # missing, none, one per bucket
ORIGINAL, REPLY, REPOST, QUOTE = 1, 2, 3, 4
KIND_ROWS = 5
ROWS = (PHOTO_ROWS, VIDEO_ROWS, KIND_ROWS)  # embedding rows per column
OFFSETS = (0, PHOTO_ROWS, PHOTO_ROWS + VIDEO_ROWS)  # each column's first row in one stacked table
NO_MEDIA = (1, 1)                          # the photo and video codes of a post without media


def post_kind_codes(photo_count, video_duration_ms, in_reply_to_post_id, repost_of_post_id,
                    quote_of_post_id) -> np.ndarray:
    """[N, 3] int8 (photo, video, kind) codes of N posts given as Post proto columns."""
    photos = np.asarray(photo_count, np.int64).reshape(-1)
    video = np.asarray(video_duration_ms, np.int64).reshape(-1)
    reply = np.asarray(in_reply_to_post_id, np.uint64).reshape(-1)
    repost = np.asarray(repost_of_post_id, np.uint64).reshape(-1)
    quote = np.asarray(quote_of_post_id, np.uint64).reshape(-1)
    out = np.empty((len(photos), 3), np.int8)
    out[:, PHOTO] = 1 + np.minimum(np.maximum(photos, 0), 2)
    out[:, VIDEO] = np.where(video > 0, 2 + np.searchsorted(VIDEO_EDGES_MS, video, side="left"), 1)
    out[:, KIND] = np.select([repost != 0, quote != 0, reply != 0], [REPOST, QUOTE, REPLY], ORIGINAL)
    return out


def post_kind_of(post) -> np.ndarray:
    """[3] codes of one Post message."""
    return post_kind_codes([post.photo_count], [post.video_duration_ms], [post.in_reply_to_post_id],
                           [post.repost_of_post_id], [post.quote_of_post_id])[0]


def has_media(codes: np.ndarray) -> np.ndarray:
    """[N] bool: the post's own photo or video codes say it has media."""
    codes = np.asarray(codes)
    return (codes[..., PHOTO] > 1) | (codes[..., VIDEO] > 1)
