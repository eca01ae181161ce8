"""Negatives of the v2 retriever's per-engagement recipe (phoenix/training/retriever.py): the
sampled global ones, with the log-Q correction that goes with how they were drawn, and the
served ones (what the feed showed a user who passed it over), chosen, so uncorrected."""
from __future__ import annotations

import numpy as np

from phoenix.training.data import post_created_ms
from phoenix.training.event_log import NEGATIVE_BITS, EventLog
from phoenix.training.timeline import Timeline, windows


RECENT_HOURS = 12.0  # "recent" / "mixed" sampling: the window of creation times before the example


def sampled_negatives(ids: np.ndarray, authors: np.ndarray, times: np.ndarray, rng: np.random.Generator,
                      k: int, how: str = "existing") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`k` sampled corpus posts (`ids`, `authors`) per example ([n * k] ids, authors) and each
    sample's log(k / size of the pool it was drawn from); the loss adds log(batch size), so
    the log-Q of a pooled column is log(pooled samples / pool size). `how` "existing": uniform
    over the posts created by the example's time (the corpus the evaluation ranks it among,
    so no sample is wasted on a post that did not exist yet); "corpus": uniform over all;
    "recent": uniform over the posts created in the RECENT_HOURS before the example's time
    (where most engagements go, so the towers learn to tell recent posts apart rather than
    recent from old, which the age biases already do; all existing posts when none is);
    "mixed": odd slots "recent", even slots "existing"."""
    times = np.repeat(np.asarray(times, np.int64), k)
    slot = np.tile(np.arange(k), len(times) // max(k, 1))
    if how in ("existing", "recent", "mixed") and len(ids):
        order = np.argsort(post_created_ms(ids), kind="stable")
        ids, authors = ids[order], authors[order]
        created = post_created_ms(ids)
        hi = np.maximum(np.searchsorted(created, times, side="right"), 1)
        recent = (slot % 2 == 1) if how == "mixed" else np.full(len(times), how == "recent")
        window = np.searchsorted(created, times - int(RECENT_HOURS * 3.6e6), side="left")
        lo = np.where(recent & (window < hi), window, 0)
    else:
        lo, hi = np.zeros(len(times), np.int64), np.full(len(times), max(len(ids), 1))
    pool = hi - lo
    log_q = np.log(k / pool).astype(np.float32)
    if not len(ids):
        return np.zeros(len(pool), np.uint64), np.zeros(len(pool), np.uint64), log_q
    pick = np.minimum(lo + (rng.random(len(pool)) * pool).astype(np.int64), len(ids) - 1)
    return ids[pick], authors[pick], log_q


def _pairs(users: np.ndarray, rows: np.ndarray, other_users: np.ndarray, other_rows: np.ndarray, n_rows: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """One integer key per (user, post row) of each of two lists, equal where the pairs are."""
    _, inverse = np.unique(np.concatenate([users, other_users]), return_inverse=True)
    key = inverse.astype(np.uint64) * np.uint64(n_rows + 1) + np.concatenate([rows, other_rows]).astype(np.uint64)
    return key[:len(users)], key[len(users):]


def served_negatives(log: EventLog, users, times, k: int, until_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """([n, k] post ids, [n, k] author ids): the last k created posts served to each user before
    each time that the user did not engage with (any action but negative feedback) before
    `until_ms` (the training window's end: later engagements are not read), oldest first,
    padded with 0 after."""
    s, e = log.served, log.engagements

    def make():
        counts = np.diff(s.offsets)
        user, time = np.repeat(s.user, counts), np.repeat(s.time, counts)
        row, known = log.posts.find(s.posts)
        positive = np.flatnonzero((e.actions & ~NEGATIVE_BITS != 0) & (e.time < until_ms) & log.posts.known(e.post))
        shown, engaged = _pairs(user, row, e.user[positive], log.posts.find(e.post[positive])[0], len(log.posts))
        keep = np.flatnonzero(known & ~np.isin(shown, engaged))
        return Timeline(user[keep], time[keep], keep)
    timeline = log.cached(f"served_negatives:{until_ms}", make)
    lo, hi = timeline.before(users, times, k)
    idx, valid = windows(lo, hi, k)
    if not len(timeline):
        return np.zeros(idx.shape, np.uint64), np.zeros(idx.shape, np.uint64)
    post = np.where(valid, s.posts[timeline.rows[idx]], 0).astype(np.uint64)
    return post, np.where(valid, log.posts.authors_of(post.reshape(-1)).reshape(post.shape), 0).astype(np.uint64)
