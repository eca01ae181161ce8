"""The full held-out evaluation `foryou eval` prints: the ranker on the time split (per action,
on all / warm / cold posts, every metric, the baselines, the content-only baseline and the
world's oracle where there is one), the retriever on the time split (sampled queries across
all held-out users) and under leave-last-out (the standard next-item protocol).

Cold = a held-out impression (or retrieval target) of a post whose id never occurs in the
training window (no impression or engagement of it before the cutoff); warm = the rest."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from phoenix.actions import BINARY_ACTION_NAMES
from phoenix.evaluation.baselines import ranker_baselines, retrieval_baseline_scores
from phoenix.evaluation.metrics import calibration, lift_share, log_loss, per_user_ndcg, pr_auc, rce, roc_auc
from phoenix.evaluation.retrieval import (Seen, leave_last_out_queries, retrieval_metrics, sample_queries,
                                         target_ranks)
from phoenix.training.data import EventLog, Split

if TYPE_CHECKING:  # imported where the content baseline runs
    from phoenix.evaluation.content_baseline import ContentVectors

SEGMENTS = ("all", "warm", "cold")
MAX_QUERIES = 3000
LEAVE_LAST_OUT_KS = (10, 50)
TIME_SPLIT_KS = (10, 50, 100)


@dataclass(frozen=True)
class Extras:
    """What the evaluation can use beyond the event log: post texts with an embed function
    (the content-only baseline) and the synthetic world's oracle."""
    content: ContentVectors | None = None
    oracle: object = None    # foryou.world.Oracle


def training_window_posts(log: EventLog, cutoff_ms: int) -> np.ndarray:
    """Sorted post ids with an impression or an engagement before the cutoff."""
    served = log.served
    shown = served.posts[:served.offsets[int(np.searchsorted(served.time, cutoff_ms))]]  # served is in time order
    return np.union1d(shown, log.engagements.post[log.engagements.time < cutoff_ms])


def action_metrics(labels: np.ndarray, scores: np.ndarray, probs: np.ndarray) -> dict[str, dict]:
    out = {}
    for a, name in enumerate(BINARY_ACTION_NAMES):
        y = labels[:, a]
        out[name] = {"auc": roc_auc(y, scores[:, a]), "pr_auc": pr_auc(y, scores[:, a]),
                     "log_loss": log_loss(y, probs[:, a]), "rce": rce(y, probs[:, a]),
                     "calibration": calibration(y, probs[:, a]), "positives": int(y.sum())}
    return out


def oracle_probs(oracle, users: np.ndarray, posts: np.ndarray) -> np.ndarray | None:
    """[N, 18] the oracle's probabilities of these impressions, or None if any is unknown."""
    if oracle is None:
        return None
    row = {(int(u), int(p)): i for i, (u, p) in enumerate(zip(oracle.user_ids, oracle.post_ids))}
    idx = [row.get((int(u), int(p)), -1) for u, p in zip(users, posts)]
    if not idx or min(idx) < 0:
        return None
    return np.asarray(oracle.probs, np.float64)[np.asarray(idx)]


def evaluate_ranker(model_probs: np.ndarray, log: EventLog, split: Split, extras: Extras = Extras(),
                    seed: int = 0) -> dict:
    """Every ranker metric of the model (its [N, 18] probabilities on split.test's candidates,
    in order) and of the baselines, on all / warm / cold candidates."""
    labels = split.test.labels
    users = split.test.candidate_users.astype(np.int64)
    posts = split.test.post
    cold = ~np.isin(posts, training_window_posts(log, split.cutoff_ms))
    masks = {"all": np.ones(len(posts), bool), "warm": ~cold, "cold": cold}
    methods = {"model": (model_probs, model_probs), **ranker_baselines(split.train, split.test, seed)}
    notes = []
    if extras.content is not None:
        from phoenix.evaluation.content_baseline import ranker_content_scores
        from phoenix.evaluation.baselines import base_rates
        cos = ranker_content_scores(extras.content, split.test)
        methods["content"] = (np.tile(cos[:, None], (1, labels.shape[1])), np.tile(base_rates(split.train), (len(cos), 1)))
    oracle = oracle_probs(extras.oracle, users, posts)
    if oracle is not None:
        methods["oracle"] = (oracle, oracle)
    elif extras.oracle is not None:
        notes.append("the oracle file does not cover these impressions: no oracle")
    fav = BINARY_ACTION_NAMES.index("favorite")
    segments = {}
    for seg, mask in masks.items():
        per = {m: action_metrics(labels[mask], s[mask], p[mask]) for m, (s, p) in methods.items()}
        ndcg = {m: per_user_ndcg(users[mask], labels[mask, fav], s[mask, fav]) for m, (s, _) in methods.items()}
        if "oracle" in per:
            for m in per:
                for a in BINARY_ACTION_NAMES:
                    per[m][a]["lift_share"] = lift_share(per[m][a]["auc"], per["oracle"][a]["auc"])
        segments[seg] = {"candidates": int(mask.sum()), "methods": per, "favorite_ndcg_per_user": ndcg}
    return {"test_candidates": int(len(labels)), "cutoff_ms": split.cutoff_ms,
            "methods": segments["all"]["methods"], "segments": segments, "notes": notes}


def _rank_table(methods: dict, queries, corpus_ids, seen: Seen) -> dict[str, np.ndarray]:
    return {name: target_ranks(fn, queries, corpus_ids, seen=seen) for name, fn in methods.items()}


def _segmented(ranks: dict[str, np.ndarray], cold: np.ndarray, ks) -> dict:
    masks = {"all": np.ones(len(cold), bool), "warm": ~cold, "cold": cold}
    return {seg: {m: retrieval_metrics(r[mask], ks) for m, r in ranks.items()} for seg, mask in masks.items()}


def evaluate_retriever(model_fn, log: EventLog, split: Split, corpus_ids: np.ndarray, history_len: int,
                       extras: Extras = Extras(), seed: int = 0, max_queries: int = MAX_QUERIES,
                       baselines: bool = True) -> dict:
    """Time split and leave-last-out, model (`model_fn(queries) -> [Q, corpus]`) and (unless
    `baselines` is False) the baselines. `foryou eval` and `foryou train retriever` both use it."""
    seen = Seen(log.engagements)
    trained = training_window_posts(log, split.cutoff_ms)
    methods = {"model": model_fn}
    if baselines:
        methods.update(retrieval_baseline_scores(split.train, corpus_ids, seed, seen))
    if baselines and extras.content is not None:
        from phoenix.evaluation.content_baseline import retrieval_content_scorer
        methods["content"] = retrieval_content_scorer(extras.content, corpus_ids, seen)

    held_out = split.test.take(np.flatnonzero(np.isin(split.test.post, np.asarray(corpus_ids, np.uint64))))
    queries = sample_queries(held_out, max_queries, seed)
    cold = ~np.isin(np.asarray([q.post_id for q in queries], np.uint64), trained)
    time_split = _segmented(_rank_table(methods, queries, corpus_ids, seen), cold, TIME_SPLIT_KS)

    in_corpus = {int(p) for p in corpus_ids}
    lolo = [q for q in leave_last_out_queries(log, seen, split.cutoff_ms, history_len) if q.post_id in in_corpus]
    lolo_cold = ~np.isin(np.asarray([q.post_id for q in lolo], np.uint64), trained)
    leave_last_out = _segmented(_rank_table(methods, lolo, corpus_ids, seen), lolo_cold,
                                LEAVE_LAST_OUT_KS)
    held_out_users = len(np.unique(held_out.user))
    return {
        "test_queries": len(queries), "corpus": int(len(corpus_ids)), "cutoff_ms": split.cutoff_ms,
        "methods": time_split["all"], "segments": time_split,
        "queries_note": (f"{len(queries)} of {len(held_out)} held-out engagements, sampled (seed {seed}) across "
                         f"{len({q.user_id for q in queries})} of {held_out_users} held-out users; corpus: every post "
                         "existing at the query time minus everything the user engaged with before"),
        "leave_last_out": {"users": len(lolo), "segments": leave_last_out,
                           "note": (f"{len(lolo)} users whose last engagement is after the cutoff: target = that "
                                    "post; history = everything before it; ranked against the whole corpus minus "
                                    "everything the user engaged with before; models and baselines fitted on the "
                                    "training window only")},
    }
