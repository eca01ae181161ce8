"""Train the two-tower retriever with an in-batch-negatives softmax on engaged posts, fit its
freshness weight, then measure recall@K / NDCG@K on the held-out future against the baselines.

Freshness: the candidate tower sees only ids, so it cannot tell a post's age, and most
engagements go to recent posts. Served and evaluated scores are `similarity + weight *
-log1p(age_hours)` (phoenix.index.Freshness). The weight is chosen on the training window
only: a validation model is trained on its first 85% and the weight that maximises its
recall@100 on the last 15% is kept. (Fitting on examples the final model was trained on
picks too small a weight: it has memorised them, so similarity alone looks good enough.)"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np

from phoenix.config import RetrieverConfig
from phoenix.evaluation.baselines import retrieval_baseline_scores
from phoenix.evaluation.retrieval import retrieval_metrics, target_ranks
from phoenix.features import hash_candidates, make_user_batch
from phoenix.index import NO_FRESHNESS, Freshness
from phoenix.losses import retriever_init_params, retriever_loss
from phoenix.runtime import RetrieverRuntime
from phoenix.training.data import (EventLog, RetrieveExample, Split, collect, post_created_ms, retrieve_examples,
                                   split_by_time)
from phoenix.training.loop import TrainSettings, fit, fresh_params, print_progress

DEFAULT_BATCH = 128       # in-batch negatives (512 measured no better on a 500-user world)
TEMPERATURE = 0.2         # 0.2 >= 0.05 > 0.1 in held-out recall@100 on a 500-user world
# Unlike the ranker, the retriever gains from memorising who follows whom: little decay.
WEIGHT_DECAY = 1e-4


def default_settings(steps: int) -> TrainSettings:
    return TrainSettings(steps=steps, batch_size=DEFAULT_BATCH, weight_decay=WEIGHT_DECAY)
# Searched in order; the first best wins, so ties go to the smaller weight.
FRESHNESS_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
VALIDATION_FRACTION = 0.15  # the tail of the training window the freshness weight is fitted on
# Training queries are capped for the held-out evaluation (the corpus is scored per query).
MAX_EVAL_QUERIES = 3000


@dataclass(frozen=True)
class RetrieverData:
    users: Any               # UserBatch [N, ...]
    post_hashes: np.ndarray  # [N, Hi]
    author_hashes: np.ndarray


jax.tree_util.register_dataclass(RetrieverData, data_fields=["users", "post_hashes", "author_hashes"], meta_fields=[])


def as_log(events: EventLog | Iterable) -> EventLog:
    return events if isinstance(events, EventLog) else collect(events)


def retriever_split(log: EventLog, config: RetrieverConfig, test_fraction: float) -> Split:
    return split_by_time(retrieve_examples(log, config.history_len), test_fraction)


def example_arrays(config: RetrieverConfig, examples: list[RetrieveExample]) -> RetrieverData:
    users = make_user_batch(config, [ex.user_id for ex in examples], [ex.history for ex in examples])
    post, author = hash_candidates(config.hash, np.asarray([ex.post_id for ex in examples], np.uint64),
                                   np.asarray([ex.author_id for ex in examples], np.uint64))
    return RetrieverData(users, post, author)


def corpus_of(log: EventLog) -> tuple[np.ndarray, np.ndarray]:
    """(post ids, author ids) of every created, not deleted post."""
    ids = [p for p in log.post_author if p not in log.deleted]
    return np.asarray(ids, np.uint64), np.asarray([log.post_author[p] for p in ids], np.uint64)


def model_score_fn(runtime: RetrieverRuntime, corpus: np.ndarray, corpus_created_ms: np.ndarray,
                   freshness: Freshness) -> Callable[[list[RetrieveExample]], np.ndarray]:
    """fn(queries) -> [len(queries), len(corpus)]: similarity plus the freshness bonus for each
    post's age at the query's time (as the server does at the request's time)."""
    def scores(part: list[RetrieveExample]) -> np.ndarray:
        users = runtime.user_embeddings([q.user_id for q in part], [q.history for q in part])
        similarity = users @ corpus.T
        if not freshness.active:
            return similarity
        now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
        return similarity + freshness.bonus(corpus_created_ms[None, :], now)
    return scores


def evaluate(params, config: RetrieverConfig, log: EventLog, split: Split, seed: int = 0,
             freshness: Freshness = NO_FRESHNESS) -> dict:
    """recall@K and NDCG@K of the model and every baseline on the held-out engagements."""
    corpus_ids, corpus_authors = corpus_of(log)
    queries = split.test[:MAX_EVAL_QUERIES]
    runtime = RetrieverRuntime(config, params)
    corpus = runtime.candidate_embeddings(corpus_ids, corpus_authors)
    created = post_created_ms(corpus_ids)
    model = model_score_fn(runtime, corpus, created, freshness)
    methods = {"model": model, **retrieval_baseline_scores(split.train, corpus_ids, seed)}
    results = {name: retrieval_metrics(target_ranks(fn, queries, corpus_ids)) for name, fn in methods.items()}
    out = {"test_queries": len(queries), "corpus": int(len(corpus_ids)), "cutoff_ms": split.cutoff_ms,
           "freshness_weight": freshness.weight, "methods": results}
    if freshness.active:  # what the re-rank adds, for the record
        plain = model_score_fn(runtime, corpus, created, NO_FRESHNESS)
        out["model_similarity_only"] = retrieval_metrics(target_ranks(plain, queries, corpus_ids))
    return out


def fit_freshness(params, config: RetrieverConfig, log: EventLog, validation: list[RetrieveExample],
                  weights=FRESHNESS_WEIGHTS) -> tuple[Freshness, dict[float, float]]:
    """The weight with the best recall@100 of `params` on the validation engagements, and the
    recall of every weight tried."""
    corpus_ids, corpus_authors = corpus_of(log)
    runtime = RetrieverRuntime(config, params)
    corpus = runtime.candidate_embeddings(corpus_ids, corpus_authors)
    created = post_created_ms(corpus_ids)
    queries = validation[:MAX_EVAL_QUERIES]
    recall = {}
    for weight in weights:
        fn = model_score_fn(runtime, corpus, created, Freshness(weight))
        recall[weight] = retrieval_metrics(target_ranks(fn, queries, corpus_ids))["recall@100"]
    best = max(recall, key=lambda w: (recall[w], -w)) if recall else 0.0
    return Freshness(best), recall


def _fit_params(examples: list[RetrieveExample], config: RetrieverConfig, settings: TrainSettings,
                temperature: float, name: str, progress: Callable[[str], None], params=None):
    data = example_arrays(config, examples)
    params = fresh_params(retriever_init_params(config, settings.seed)) if params is None else params

    def loss_fn(p, b: RetrieverData):
        return retriever_loss(p, config, b.users, b.post_hashes, b.author_hashes, temperature)

    return fit(loss_fn, params, data, len(examples), settings, name, progress)


def train(events: EventLog | Iterable, config: RetrieverConfig, steps: int = 400,
          settings: TrainSettings | None = None, progress: Callable[[str], None] = print_progress,
          params=None, temperature: float = TEMPERATURE,
          freshness_weights=FRESHNESS_WEIGHTS) -> tuple[Any, dict]:
    """Train on the events (an EventLog or (topic, message) pairs); returns (params, metrics).
    metrics["scoring"] is what serving needs besides the params (the fitted freshness weight;
    checkpoints.save writes it to scoring.json). Empty `freshness_weights`: no freshness (and
    no validation model to train)."""
    settings = replace(settings or default_settings(steps), steps=steps)
    log = as_log(events)
    split = retriever_split(log, config, settings.test_fraction)
    progress(f"[retriever] {len(split.train)} training / {len(split.test)} held-out engagements "
             f"(before / after {split.cutoff_ms})")
    freshness, tried = NO_FRESHNESS, {}
    inner = split_by_time(split.train, VALIDATION_FRACTION)
    if freshness_weights and inner.train and inner.test:
        validation_params, _ = _fit_params(inner.train, config, settings, temperature, "retriever-validation",
                                           progress)
        freshness, tried = fit_freshness(validation_params, config, log, inner.test, freshness_weights)
        progress("[retriever] freshness weight " + f"{freshness.weight} (validation recall@100 "
                 + ", ".join(f"{w}: {r:.3f}" for w, r in tried.items()) + ")")
    params, summary = _fit_params(split.train, config, settings, temperature, "retriever", progress, params)
    evaluation = evaluate(params, config, log, split, settings.seed, freshness)
    recall = {m: r["recall@100"] for m, r in evaluation["methods"].items()}
    progress("[retriever] held-out recall@100: " + ", ".join(f"{m} {v:.3f}" for m, v in recall.items()))
    return params, {"train": summary, "eval": evaluation, "scoring": freshness.to_dict(),
                    "freshness_validation_recall@100": {str(w): r for w, r in tried.items()}}
