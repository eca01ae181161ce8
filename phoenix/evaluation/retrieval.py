"""Held-out evaluation of retrieval: where does the engaged post rank among the corpus?

The corpus a query sees is every post created at or before the query time (the whole corpus
then, not sampled negatives), minus every post the user engaged with before (a feed does not
re-recommend what the user already engaged with; `Seen`), the same for the model and the
baselines. Ties are broken at random in expectation (rank counts half of the equal scores),
so a constant score gets a middling rank, not the best.

Queries are sampled across all held-out users (`sample_queries`: seeded, round-robin over
users) rather than taken in time order, which would cover only the first users to act."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from phoenix.evaluation.metrics import ndcg_at_k, recall_at_k
from phoenix.training.data import RetrieveExample, RetrieveExamples, history_of, post_created_ms
from phoenix.training.event_log import NEGATIVE_BITS, EventLog, Engagements
from phoenix.training.timeline import Timeline

KS = (10, 50, 100)


class Seen:
    """Per user, the posts they engaged with positively (any action but negative feedback), in
    time order: `before(user, t)` is everything engaged strictly before t (whatever the
    model's history length)."""

    def __init__(self, engagements: Engagements) -> None:
        rows = np.flatnonzero(engagements.actions & ~NEGATIVE_BITS != 0)
        self._timeline = Timeline(engagements.user[rows], engagements.time[rows], rows)
        self._posts = engagements.post[self._timeline.rows]

    def before(self, user_id: int, time_ms: int) -> list[int]:
        lo, hi = self._timeline.before(np.asarray([user_id], np.uint64), np.asarray([time_ms], np.int64))
        return self._posts[int(lo[0]):int(hi[0])].tolist()

    def users(self) -> list[int]:
        return self._timeline.groups.tolist()

    def last(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(users, time, post) of every user's last positive engagement."""
        users, position = self._timeline.last()
        return users, self._timeline.times[position], self._posts[position]


def sample_queries(test: Any, max_queries: int, seed: int = 0) -> list[RetrieveExample]:
    """At most `max_queries` held-out queries, seeded: each user's queries shuffled, then taken
    round-robin over the users (shuffled too), so every held-out user is covered before any
    user gets a second query. All of them when there are few enough."""
    if len(test) <= max_queries:
        return list(test)
    rng = np.random.default_rng(seed)
    by_user: dict[int, list[int]] = defaultdict(list)
    for row, user in enumerate(test.user.tolist()):
        by_user[user].append(row)
    users = [u for u in sorted(by_user)]
    rng.shuffle(users)
    queues = []
    for u in users:
        qs = by_user[u]
        queues.append([qs[i] for i in rng.permutation(len(qs))])
    out: list[int] = []
    depth = 0
    while len(out) < max_queries:
        for queue in queues:
            if depth < len(queue):
                out.append(queue[depth])
                if len(out) == max_queries:
                    break
        depth += 1
    return [test[i] for i in out]


def target_ranks(score_fn: Callable[[list[RetrieveExample]], np.ndarray], queries: list[RetrieveExample],
                 corpus_ids: np.ndarray, batch: int = 256, seen: Seen | None = None) -> np.ndarray:
    """0-based expected rank of each query's engaged post among its allowed corpus: posts that
    exist at the query time, minus the user's earlier engagements (`seen`: all of them;
    without it, the query's history only). A query whose post is not in the corpus is
    dropped."""
    corpus_ids = np.asarray(corpus_ids, np.uint64)
    created = post_created_ms(corpus_ids)
    position = {int(p): i for i, p in enumerate(corpus_ids)}
    kept = [q for q in queries if int(q.post_id) in position]
    ranks = []
    for lo in range(0, len(kept), batch):  # one [batch, corpus] mask and comparison per batch
        part = kept[lo:lo + batch]
        scores = np.asarray(score_fn(part), np.float64)
        targets = np.asarray([position[int(q.post_id)] for q in part])
        allowed = created[None, :] <= np.asarray([q.time_ms for q in part], np.int64)[:, None]
        rows, cols = _earlier_cells(part, position, seen)
        allowed[rows, cols] = False
        allowed[np.arange(len(part)), targets] = True
        t = scores[np.arange(len(part)), targets][:, None]
        higher = ((scores > t) & allowed).sum(axis=1)
        equal = ((scores == t) & allowed).sum(axis=1)
        ranks.append(higher + 0.5 * (equal - 1))
    return np.concatenate(ranks).astype(np.float64) if ranks else np.zeros(0)


def _earlier_cells(part: list[RetrieveExample], position: dict[int, int], seen: Seen | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(row, corpus column) of every post each query's user engaged with before it."""
    rows: list[int] = []
    cols: list[int] = []
    for row, q in enumerate(part):
        earlier = seen.before(q.user_id, q.time_ms) if seen is not None else [h.post_id for h in q.history]
        hits = [position[p] for p in earlier if p in position]
        rows.extend([row] * len(hits))
        cols.extend(hits)
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64)


def retrieval_metrics(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    out["queries"] = int(len(ranks))
    return out


def leave_last_out_queries(log: EventLog, seen: Seen, cutoff_ms: int, history_len: int) -> list[RetrieveExample]:
    """The standard next-item protocol, made leak-free for a model trained on the time split:
    one query per user whose last positive engagement is at or after the cutoff (so no model
    or baseline fitted on the training window saw it); the target is that last post, the
    history everything before it."""
    history, timeline = history_of(log)
    users, times, posts = seen.last()
    keep = (times >= cutoff_ms) & log.posts.known(posts)
    users, times, posts = users[keep], times[keep], posts[keep]
    lo, hi = timeline.before(users, times, history_len)
    table = RetrieveExamples(users, times, lo, hi, posts, log.posts.authors_of(posts),
                             np.zeros(len(users), np.uint64), history)
    return list(table)
