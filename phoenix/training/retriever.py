"""Train the two-tower retriever with an in-batch-negatives softmax on engaged posts, then
measure recall@K / NDCG@K on the held-out future against the baselines."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from phoenix.config import RetrieverConfig
from phoenix.evaluation.baselines import retrieval_baseline_scores
from phoenix.evaluation.retrieval import retrieval_metrics, target_ranks
from phoenix.features import hash_candidates, make_user_batch
from phoenix.losses import retriever_init_params, retriever_loss
from phoenix.runtime import RetrieverRuntime
from phoenix.training.data import EventLog, RetrieveExample, Split, collect, retrieve_examples, split_by_time
from phoenix.training.loop import TrainSettings, fit, fresh_params, print_progress

DEFAULT_BATCH = 128       # in-batch negatives (512 measured no better on a 500-user world)
TEMPERATURE = 0.2         # 0.2 >= 0.05 > 0.1 in held-out recall@100 on a 500-user world
# Unlike the ranker, the retriever gains from memorising who follows whom: little decay.
WEIGHT_DECAY = 1e-4


def default_settings(steps: int) -> TrainSettings:
    return TrainSettings(steps=steps, batch_size=DEFAULT_BATCH, weight_decay=WEIGHT_DECAY)
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


def evaluate(params, config: RetrieverConfig, log: EventLog, split: Split, seed: int = 0) -> dict:
    """recall@K and NDCG@K of the model and every baseline on the held-out engagements."""
    corpus_ids, corpus_authors = corpus_of(log)
    queries = split.test[:MAX_EVAL_QUERIES]
    runtime = RetrieverRuntime(config, params)
    corpus = runtime.candidate_embeddings(corpus_ids, corpus_authors)

    def model_scores(part: list[RetrieveExample]) -> np.ndarray:
        users = runtime.user_embeddings([q.user_id for q in part], [q.history for q in part])
        return users @ corpus.T

    methods = {"model": model_scores, **retrieval_baseline_scores(split.train, corpus_ids, seed)}
    results = {name: retrieval_metrics(target_ranks(fn, queries, corpus_ids)) for name, fn in methods.items()}
    return {"test_queries": len(queries), "corpus": int(len(corpus_ids)), "cutoff_ms": split.cutoff_ms,
            "methods": results}


def train(events: EventLog | Iterable, config: RetrieverConfig, steps: int = 400,
          settings: TrainSettings | None = None, progress: Callable[[str], None] = print_progress,
          params=None, temperature: float = TEMPERATURE) -> tuple[Any, dict]:
    """Train on the events (an EventLog or (topic, message) pairs); returns (params, metrics)."""
    settings = settings or default_settings(steps)
    if settings.steps != steps:
        settings = TrainSettings(**{**settings.__dict__, "steps": steps})
    log = as_log(events)
    split = retriever_split(log, config, settings.test_fraction)
    progress(f"[retriever] {len(split.train)} training / {len(split.test)} held-out engagements "
             f"(before / after {split.cutoff_ms})")
    data = example_arrays(config, split.train)
    params = fresh_params(retriever_init_params(config, settings.seed)) if params is None else params

    def loss_fn(p, b: RetrieverData):
        return retriever_loss(p, config, b.users, b.post_hashes, b.author_hashes, temperature)

    params, summary = fit(loss_fn, params, data, len(split.train), settings, "retriever", progress)
    evaluation = evaluate(params, config, log, split, settings.seed)
    recall = {m: r["recall@100"] for m, r in evaluation["methods"].items()}
    progress("[retriever] held-out recall@100: " + ", ".join(f"{m} {v:.3f}" for m, v in recall.items()))
    return params, {"train": summary, "eval": evaluation}
