"""What the retriever is scored with outside training: its runtime over an event log's corpus,
the score function the held-out evaluation ranks with (similarity plus the fitted re-rank,
phoenix/rerank.py, as Phoenix serves it), the evaluation itself and the re-rank's fit."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phoenix.config import RetrieverConfig
from phoenix.evaluation.retrieval import Seen
from phoenix.rerank import NO_SCORING, Scoring, count_matrix
from phoenix.runtime import RetrieverRuntime
from phoenix.training import freshness as freshness_fit
from phoenix.training.data import EventLog, RetrieveExample, Split, features_for, post_created_ms
from phoenix.training.freshness import FRESHNESS_WEIGHTS


def runtime_for(params, config: RetrieverConfig, log: EventLog, codebook=None) -> RetrieverRuntime:
    features = features_for(config, log, codebook)
    return RetrieverRuntime(config, params, codebook, features.store if features else None)


def corpus_of(log: EventLog) -> tuple[np.ndarray, np.ndarray]:
    """(post ids, author ids) of every created, not deleted post."""
    alive = ~log.posts.deleted
    return log.posts.ids[alive], log.posts.authors[alive]


def embedded_corpus(params, config: RetrieverConfig, log: EventLog, codebook=None
                    ) -> tuple[RetrieverRuntime, np.ndarray, np.ndarray, np.ndarray]:
    """(runtime, candidate embeddings [N, D], post ids, author ids) of the log's corpus."""
    corpus_ids, corpus_authors = corpus_of(log)
    runtime = runtime_for(params, config, log, codebook)
    return runtime, runtime.candidate_embeddings(corpus_ids, corpus_authors), corpus_ids, corpus_authors


def model_score_fn(runtime: RetrieverRuntime, corpus: np.ndarray, corpus_ids: np.ndarray, corpus_authors: np.ndarray,
                   scoring: Scoring = NO_SCORING) -> Callable[[list[RetrieveExample]], np.ndarray]:
    """fn(queries) -> [len(queries), len(corpus)]: similarity plus the re-rank's bonuses for
    each post's age at the query's time and for the query's engagements with its author (as
    the server does with the request's time and history)."""
    created = post_created_ms(np.asarray(corpus_ids, np.uint64))
    history_len = runtime.config.history_len

    def scores(part: list[RetrieveExample]) -> np.ndarray:
        users = runtime.user_embeddings([q.user_id for q in part], [q.history for q in part])
        now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
        return scoring.rescored(users @ corpus.T, created, now,
                                lambda: count_matrix([q.history for q in part], corpus_authors, history_len))
    return scores


def evaluate(params, config: RetrieverConfig, log: EventLog, split: Split, seed: int = 0,
             scoring: Scoring = NO_SCORING, codebook=None) -> dict:
    """The held-out retrieval evaluation `foryou eval` prints (phoenix/evaluation/evaluate.py:
    time split with queries sampled across all held-out users, and leave-last-out; full corpus
    minus everything the user engaged with before), of the model and every baseline but the
    content-only one."""
    from phoenix.evaluation.evaluate import evaluate_retriever

    runtime, corpus, corpus_ids, corpus_authors = embedded_corpus(params, config, log, codebook)
    model = model_score_fn(runtime, corpus, corpus_ids, corpus_authors, scoring)
    out = {"freshness_weight": scoring.freshness.weight, "affinity_weight": scoring.affinity.weight,
           **evaluate_retriever(model, log, split, corpus_ids, config.history_len, seed=seed)}
    if scoring != NO_SCORING:  # what the re-rank adds, for the record
        plain = model_score_fn(runtime, corpus, corpus_ids, corpus_authors)
        out["model_similarity_only"] = evaluate_retriever(plain, log, split, corpus_ids, config.history_len,
                                                          seed=seed, baselines=False)["methods"]["model"]
    return out


def fit_scoring(params, config: RetrieverConfig, log: EventLog, validation: list[RetrieveExample],
                weights=FRESHNESS_WEIGHTS, codebook=None, seed: int = 0) -> tuple[Scoring, dict[str, float]]:
    """The re-rank with the best recall@100 of `params` on the validation engagements (sampled
    and scored as the held-out evaluation does; phoenix/training/freshness.py), and the recall
    of every candidate tried."""
    runtime, corpus, corpus_ids, corpus_authors = embedded_corpus(params, config, log, codebook)

    def users(part):
        return runtime.user_embeddings([q.user_id for q in part], [q.history for q in part])
    return freshness_fit.fit_freshness(users, corpus, corpus_ids, Seen(log.engagements), validation, weights, seed,
                                       corpus_authors=corpus_authors, history_len=config.history_len)
