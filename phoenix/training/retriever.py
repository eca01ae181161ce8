"""Train the two-tower retriever with an in-batch-negatives softmax on engaged posts, fit its
re-rank (freshness and author affinity), then measure recall@K / NDCG@K on the held-out future against the baselines.

Freshness: the candidate tower cannot tell a post's age, and most engagements go to recent
posts. Served and evaluated scores add a fitted bonus for the post's age and one for the user's
engagements with its author (phoenix/rerank.py, fitted by phoenix/training/freshness.py and
scored by phoenix/training/retriever_scoring.py) on the training window only, on engagements no model
it judges was fitted on: a v2 model's early-stopping slice (the last part of the training
window, which the final model is validated on but never trained on), and for v1 models, which
train a fixed number of steps without such a slice, the last 15% of the window, judged with a
validation model trained on the first 85%. (Fitting on examples the final model was trained on
picks too small a bonus: it has memorised them, so similarity alone looks good enough.)"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from phoenix.config import RetrieverConfig
from phoenix.features import candidate_inputs, hash_candidates, user_batch_of_columns
from phoenix.rerank import NO_SCORING
from foryou_protos import common_pb2
from phoenix.losses import retriever_init_params, retriever_loss, retriever_loss_v2, retriever_sequence_loss
from phoenix.training.data import (EventLog, RetrieveExamples, Split, collect, features_for,
                                   fit_codebook_for, hard_negatives, history_of, post_created_ms, retrieve_examples,
                                   split_by_time, time_cutoff)
from phoenix.training.freshness import AGE_EDGES_H, FRESHNESS_WEIGHTS
from phoenix.training.retriever_scoring import corpus_of, evaluate, fit_scoring
from phoenix.training.negatives import sampled_negatives, served_negatives
from phoenix.training.loop import TrainSettings, fit, fresh_params, print_progress, validation_split
from phoenix.training.event_log import action_bits
from phoenix.training.sequences import POSITIVE_ACTIONS, TargetShares, model_mask, user_windows

DEFAULT_BATCH = 128       # in-batch negatives (512 measured no better on a 500-user world)
TEMPERATURE = 0.2         # 0.2 >= 0.05 > 0.1 in held-out recall@100 on a 500-user world
# Unlike the ranker, the retriever gains from memorising who follows whom: little decay.
WEIGHT_DECAY = 1e-4


VALIDATION_FRACTION = 0.15  # v1: the tail of the training window the freshness weight is fitted on


@dataclass(frozen=True)
class RetrieverData:
    users: Any               # UserBatch [N, ...]
    post_hashes: np.ndarray  # [N, Hi]
    author_hashes: np.ndarray


jax.tree_util.register_dataclass(RetrieverData, data_fields=["users", "post_hashes", "author_hashes"], meta_fields=[])


def as_log(events: EventLog | Iterable) -> EventLog:
    return events if isinstance(events, EventLog) else collect(events)


def retriever_split(log: EventLog, config: RetrieverConfig, test_fraction: float) -> Split:
    return split_by_time(retrieve_examples(log, config.history_len), test_fraction, log)


# v2 training (a model without post-id embeddings in its candidate tower): sequential --------
SEQUENCE_BATCH = 32            # windows of history_len + 1 engagements per step (33 x 32 targets)
GLOBAL_NEGATIVES_PER_WINDOW = 8  # sampled corpus posts per window, pooled over the batch
HARD_NEGATIVES = 4               # the user's most recent negative-feedback posts per window / example
GLOBAL_NEGATIVES_PER_EXAMPLE = 2  # per-engagement recipe: 2 x batch global negatives
# Per-engagement recipe: negatives created after the engagement are masked, and a bias per
# post-age bucket (freshness.AGE_EDGES_H) is learned with the towers (losses.retriever_loss_v2).
AGE_BIAS = True
# Per-engagement recipe: every logit gets a learned weight * log1p(the row's positive history
# items by the column's author), the served re-rank's affinity term (phoenix/rerank.py).
AFFINITY_IN_LOSS = True
SERVED_NEGATIVES = 0  # per engagement: the user's last served-and-passed-over posts as hard negatives
NEGATIVES = "corpus"  # where the per-engagement recipe samples its global negatives (negatives.py)
# The loop's parameter moving average (TrainSettings.ema_decay, as the ranker's recipe): validation,
# early stopping and the saved checkpoint use the averaged parameters. On for the sequential
# recipe (it lifted MovieLens beyond two seeds' spread), off for the per-engagement one (within
# the spread on the demo world); docs/phoenix.md, "Retriever v2".
EMA_DECAY = 0.0
SEQUENCE_EMA_DECAY = 0.99


def is_v2(config: RetrieverConfig) -> bool:
    return not config.inputs.candidate_post_ids


def default_settings(steps: int, config: RetrieverConfig | None = None) -> TrainSettings:
    """Batches of 128 engagements; a sequential v2 retriever: SEQUENCE_BATCH windows. v2 recipes
    average their parameters (EMA_DECAY / SEQUENCE_EMA_DECAY); v1 keeps its plain recipe."""
    if config is None or not is_v2(config):
        return TrainSettings(steps=steps, batch_size=DEFAULT_BATCH, weight_decay=WEIGHT_DECAY)
    sequential = config.user_pooling == "last"
    return TrainSettings(steps=steps, batch_size=SEQUENCE_BATCH if sequential else DEFAULT_BATCH,
                         weight_decay=WEIGHT_DECAY, ema_decay=SEQUENCE_EMA_DECAY if sequential else EMA_DECAY)


def _tower_inputs(config: RetrieverConfig, features, post_ids: np.ndarray, author_ids: np.ndarray) -> dict:
    """Candidate-tower inputs of ids of any shape (id 0: padding, all zeros)."""
    shape = np.shape(post_ids)
    post_ids, author_ids = np.asarray(post_ids, np.uint64).reshape(-1), np.asarray(author_ids, np.uint64).reshape(-1)
    post, author = hash_candidates(config.hash, post_ids, author_ids)
    extra = candidate_inputs(config, post_ids, features)
    out = {"post_hashes": post, "author_hashes": author}
    if "candidate_sids" in extra:
        out["sids"] = extra["candidate_sids"]
    if "candidate_content" in extra:
        out["content"] = extra["candidate_content"].astype(np.float16)  # half the memory; cast in the model
    return {k: v.reshape(*shape, *v.shape[1:]) for k, v in out.items()}


def sequence_arrays(config: RetrieverConfig, log: EventLog, features, end_ms: int, targets_from_ms: int,
                    seed: int, shares: TargetShares | None = None,
                    positives=None) -> tuple[dict, int, TargetShares]:
    """Columnar arrays of every user's windows of engagements before `end_ms` whose targets
    (positive engagements at or after `targets_from_ms`) exist: (arrays, windows, shares).
    `shares`: the target distribution the log-Q correction assumes (default: these targets')."""
    rng = np.random.default_rng(seed)
    s, p = config.history_len, config.history_len + 1
    history, timeline = history_of(log)
    w_user, w_key, w_lo, w_hi, first = user_windows(timeline, end_ms, s)
    idx = w_lo[:, None] + np.arange(p)
    in_window = idx < w_hi[:, None]
    idx = np.where(in_window, idx, 0)
    positive = (history.actions[idx] & np.uint32(model_mask(positives))) != 0 if len(history.post) else in_window
    valid = (in_window & (np.arange(p) >= first[:, None]) & positive & (history.time[idx] >= targets_from_ms)
             & log.posts.known(history.post[idx]))
    keep = valid.any(axis=1)
    w_user, w_key, w_lo, w_hi, valid, idx = w_user[keep], w_key[keep], w_lo[keep], w_hi[keep], valid[keep], idx[keep]
    n = len(w_user)
    # a non-target slot needs no tower inputs
    post_ids = np.where(valid, history.post[idx], 0).astype(np.uint64)
    author_ids = np.where(valid, history.author[idx], 0).astype(np.uint64)
    shares = shares or TargetShares.of(post_ids[valid])
    corpus_ids, corpus_authors = corpus_of(log)
    pick = rng.integers(0, max(len(corpus_ids), 1), size=(n, GLOBAL_NEGATIVES_PER_WINDOW))
    ends = history.time[np.maximum(w_hi - 1, 0)] + 1 if n else np.zeros(0, np.int64)
    hard_ids, hard_authors = hard_negatives(log, w_user, ends, HARD_NEGATIVES)
    users = user_batch_of_columns(config, w_user, history.columns(w_lo, np.minimum(w_lo + s, w_hi), s), features)
    arrays = {
        "users": users,
        "targets": _tower_inputs(config, features, post_ids, author_ids),
        "valid": valid, "share": shares.lookup(post_ids),
        "user_key": w_key.astype(np.int32),
        "neg": _tower_inputs(config, features, corpus_ids[pick], corpus_authors[pick]),
        "neg_share": shares.lookup(corpus_ids[pick]),
        "hard": _tower_inputs(config, features, hard_ids, hard_authors),
    }
    return arrays, n, shares


def _sequence_loss(config: RetrieverConfig, temperature: float, corpus_size: int, dropout: float = 0.0):
    def loss_fn(p, b, key=None):  # key: a training step's (loop.fit passes one when dropout > 0)
        # the windows' global negatives, pooled: every row sees the whole batch's samples
        neg = {k: v.reshape(-1, *v.shape[2:]) for k, v in b["neg"].items()}
        return retriever_sequence_loss(p, config, b["users"], b["targets"], b["valid"], b["share"], b["user_key"],
                                       neg, b["neg_share"].reshape(-1), b["hard"], corpus_size, temperature,
                                       dropout if key is not None else 0.0, key)
    return loss_fn


def initial_params(config: RetrieverConfig, seed: int):
    """v2 starts with the user-hash rows at zero as well as the post rows: a user never seen in
    training (most users of a held-out future) is then represented by its history alone, not by
    a random row."""
    params = fresh_params(retriever_init_params(config, seed))

    def reset(path, leaf):
        names = [getattr(k, "key", getattr(k, "name", "")) for k in path]
        return jnp.zeros_like(leaf) if "user_tables" in names else leaf
    return jax.tree_util.tree_map_with_path(reset, params)


def _fit_sequential(log: EventLog, cutoff_ms: int, config: RetrieverConfig, settings: TrainSettings,
                    temperature: float, name: str, progress: Callable[[str], None], features, params=None,
                    positives=None):
    """Train on the engagements before `cutoff_ms`; the last `validation_fraction` of their
    positive targets (by time) is the early-stopping slice: the model fits the windows before
    it and is validated on the targets after it (with everything before as history)."""
    positives = POSITIVE_ACTIONS if positives is None else frozenset(positives)
    if config.prefix_attention != "causal":
        raise ValueError("sequential retriever training needs prefix_attention='causal' (every position "
                         "must see only its prefix)")
    e = log.engagements
    times = e.time[(e.time < cutoff_ms) & (e.actions & np.uint64(action_bits(positives)) != 0)]
    val_from = time_cutoff(times, settings.validation_fraction) if settings.validation_fraction > 0 else cutoff_ms
    data, n, shares = sequence_arrays(config, log, features, val_from, 0, settings.seed, positives=positives)
    val, n_val = None, 0
    if val_from < cutoff_ms:
        val, n_val, _ = sequence_arrays(config, log, features, cutoff_ms, val_from, settings.seed + 1, shares,
                                        positives)
    progress(f"[{name}] {n} training windows ({int(data['valid'].sum())} targets), {n_val} validation windows")
    model = initial_params(config, settings.seed) if params is None else params
    trainable = {"model": model, "temperature": np.zeros((), np.float32)}
    corpus_size = int((~log.posts.deleted).sum())
    trained, summary = fit(_sequence_loss(config, temperature, corpus_size, settings.dropout), trainable, data, n,
                           settings, name,
                           progress, val if n_val else None, n_val)
    if n_val:
        summary["validation_from_ms"] = val_from
    summary["temperature"] = float(temperature * np.exp(np.asarray(trained["temperature"])))
    summary["positives"] = "+".join(sorted(common_pb2.Action.Name(a).lower() for a in positives))
    summary["objective"] = "sequential: every prefix of each window, in-batch + sampled + hard negatives, log-Q"
    return trained["model"], summary


def v2_example_arrays(config: RetrieverConfig, log: EventLog, examples: RetrieveExamples, features,
                      seed: int) -> dict:
    """Columnar arrays for the v2 loss: users, positives, sampled global negatives, hard
    negatives and each positive's log-Q (log share of the training positives)."""
    rng = np.random.default_rng(seed)
    n = len(examples)
    users = user_batch_of_columns(config, examples.user,
                                  examples.history.columns(examples.lo, examples.hi, config.history_len), features)
    pos_ids = examples.post
    pos = _tower_inputs(config, features, pos_ids, examples.author)
    uniq, inverse, freq = np.unique(pos_ids, return_inverse=True, return_counts=True)
    log_q = np.log(freq[inverse] / max(n, 1)).astype(np.float32)
    corpus_ids, corpus_authors, neg_log_q = sampled_negatives(*corpus_of(log), examples.time, rng,
                                                               GLOBAL_NEGATIVES_PER_EXAMPLE, NEGATIVES)
    neg = _tower_inputs(config, features, corpus_ids, corpus_authors)
    neg = {k: v.reshape(n, GLOBAL_NEGATIVES_PER_EXAMPLE, *v.shape[1:]) for k, v in neg.items()}
    hard_ids, hard_authors = hard_negatives(log, examples.user, examples.time, HARD_NEGATIVES)
    if SERVED_NEGATIVES:  # the feed showed them, the user passed them over
        until = int(examples.time.max()) + 1 if n else 0
        served = served_negatives(log, examples.user, examples.time, SERVED_NEGATIVES, until)
        hard_ids, hard_authors = (np.concatenate([a, b], axis=1) for a, b in zip((hard_ids, hard_authors), served))
    h = hard_ids.shape[1]
    hard = _tower_inputs(config, features, hard_ids.reshape(-1), hard_authors.reshape(-1))
    hard = {k: v.reshape(n, h, *v.shape[1:]) for k, v in hard.items()}
    base = int(examples.time.max()) if n else 0  # hours before the last engagement: float32 keeps them exact enough

    def hours(ms) -> np.ndarray:
        return ((np.asarray(ms, np.float64) - base) / 3.6e6).astype(np.float32)
    ages = {"time": hours(examples.time), "pos": hours(post_created_ms(pos_ids)),
            "neg": hours(post_created_ms(corpus_ids)).reshape(n, GLOBAL_NEGATIVES_PER_EXAMPLE),
            "hard": hours(post_created_ms(hard_ids.reshape(-1))).reshape(n, h)}
    return {"users": users, "pos": pos, "neg": neg, "hard": hard, "log_q": log_q,
            "neg_log_q": neg_log_q.reshape(n, GLOBAL_NEGATIVES_PER_EXAMPLE), "ages": ages}


def _v2_loss(config: RetrieverConfig, temperature: float, dropout: float = 0.0):
    def loss_fn(p, b, key=None):  # key: a training step's (loop.fit passes one when dropout > 0)
        # the rows' global negatives, pooled: every row sees the whole batch's samples
        neg = {k: v.reshape(-1, *v.shape[2:]) for k, v in b["neg"].items()}
        neg_log_q = b["neg_log_q"].reshape(-1) + jnp.log(b["log_q"].shape[0])  # [G]
        ages = {**b["ages"], "neg": b["ages"]["neg"].reshape(-1)}
        return retriever_loss_v2(p, config, b["users"], b["pos"], neg, b["hard"], b["log_q"], neg_log_q, temperature,
                                 ages if AGE_BIAS else None, AGE_EDGES_H, dropout if key is not None else 0.0,
                                 key)
    return loss_fn


def _fit_v2(log: EventLog, examples: RetrieveExamples, config: RetrieverConfig, settings: TrainSettings,
            temperature: float, name: str, progress: Callable[[str], None], features, params=None,
            positive_actions=None):
    """The per-engagement v2 recipe of a mean-pooled user (`user_pooling="mean"`): one example
    per positive engagement (its history, its post)."""
    positive_actions = POSITIVE_ACTIONS if positive_actions is None else frozenset(positive_actions)
    positives = examples.with_actions(positive_actions)
    fit_part, validation = validation_split(positives, settings.validation_fraction)
    data = v2_example_arrays(config, log, fit_part, features, settings.seed)
    val = v2_example_arrays(config, log, validation, features, settings.seed + 1) if validation else None
    model = fresh_params(retriever_init_params(config, settings.seed)) if params is None else params
    trainable = {"model": model, "temperature": np.zeros((), np.float32)}
    if AGE_BIAS:
        trainable["age_bias"] = np.zeros(len(AGE_EDGES_H) + 1, np.float32)
    if AFFINITY_IN_LOSS:
        trainable["affinity"] = np.zeros((), np.float32)
    trained, summary = fit(_v2_loss(config, temperature, settings.dropout), trainable, data, len(fit_part), settings, name,
                           progress, val, len(validation))
    if AGE_BIAS:  # in logit units (the fitted re-rank is refitted on the validation slice)
        summary["age_bias"] = np.asarray(trained["age_bias"]).round(3).tolist()
    if AFFINITY_IN_LOSS:
        summary["affinity_in_loss"] = float(trained["affinity"])
    if validation:
        summary["validation_from_ms"] = validation[0].time_ms
    summary["temperature"] = float(temperature * np.exp(np.asarray(trained["temperature"])))
    summary["positives"] = "+".join(sorted(common_pb2.Action.Name(a).lower() for a in positive_actions))
    return trained["model"], summary


def example_arrays(config: RetrieverConfig, examples: RetrieveExamples) -> RetrieverData:
    users = user_batch_of_columns(config, examples.user,
                                  examples.history.columns(examples.lo, examples.hi, config.history_len))
    post, author = hash_candidates(config.hash, examples.post, examples.author)
    return RetrieverData(users, post, author)


def _fit_params(examples: RetrieveExamples, config: RetrieverConfig, settings: TrainSettings,
                temperature: float, name: str, progress: Callable[[str], None], params=None):
    data = example_arrays(config, examples)
    params = fresh_params(retriever_init_params(config, settings.seed)) if params is None else params

    def loss_fn(p, b: RetrieverData):
        # b's arrays are jax arrays when traced; jnp.asarray only says so
        return retriever_loss(p, config, b.users, jnp.asarray(b.post_hashes), jnp.asarray(b.author_hashes), temperature)

    return fit(loss_fn, params, data, len(examples), settings, name, progress)


def train(events: EventLog | Iterable, config: RetrieverConfig, steps: int = 400,
          settings: TrainSettings | None = None, progress: Callable[[str], None] = print_progress,
          params=None, temperature: float = TEMPERATURE,
          freshness_weights=FRESHNESS_WEIGHTS, positives=None, codebook=None,
          dropout: float | None = None) -> tuple[Any, dict]:
    """Train on the events (an EventLog or (topic, message) pairs); returns (params, metrics).
    metrics["scoring"]: what serving needs besides the params (the fitted re-rank, saved to
    scoring.json). Empty `freshness_weights`: no freshness re-rank. `positives`: the actions whose
    engagements a v2 retriever learns to retrieve (default POSITIVE_ACTIONS). `params` /
    `codebook`: warm-start from them (continuous training, follow.py). `dropout`: a v2 user
    tower's input dropout while training (None: the settings'; v1 has none)."""
    settings = replace(settings or default_settings(steps, config), steps=steps)
    if dropout is not None:
        settings = replace(settings, dropout=dropout)
    if settings.dropout and not is_v2(config):
        raise ValueError("retriever dropout: v2 models only (v1 keeps its recipe)")
    log = as_log(events)
    split = retriever_split(log, config, settings.test_fraction)
    progress(f"[retriever] {len(split.train)} training / {len(split.test)} held-out engagements "
             f"(before / after {split.cutoff_ms})")
    if codebook is None:  # warm start keeps the codebook its params were trained with
        codebook = fit_codebook_for(log, config.inputs, settings.test_fraction, settings.seed)
    v2 = is_v2(config)
    features = features_for(config, log, codebook)

    def fit_on(examples, cutoff_ms, name, start=None):
        if v2 and config.user_pooling == "last":  # sequential: every window of engagements before the cutoff
            return _fit_sequential(log, cutoff_ms, config, settings, temperature, name, progress, features, start,
                                   positives)
        if v2:
            return _fit_v2(log, examples, config, settings, temperature, name, progress, features, start, positives)
        no_early = replace(settings, validation_fraction=0.0)  # v1 keeps its fixed-step recipe
        return _fit_params(examples, config, no_early, temperature, name, progress, start)

    scoring, tried = NO_SCORING, dict[str, float]()
    validation_params, tail = None, []
    if freshness_weights and not v2:  # v1 has no early-stopping slice: a validation model
        inner = split_by_time(split.train, VALIDATION_FRACTION)
        if inner.train and inner.test:
            validation_params, _ = fit_on(inner.train, inner.cutoff_ms, "retriever-validation")
            tail = inner.test
    params, summary = fit_on(split.train, split.cutoff_ms, "retriever", params)
    if v2 and "validation_from_ms" in summary:  # no freshness weights: the affinity alone may be fitted
        validation_params = params
        tail = split.train.take(np.flatnonzero(split.train.time >= summary["validation_from_ms"]))
    if validation_params is not None and tail:
        scoring, tried = fit_scoring(validation_params, config, log, tail, freshness_weights, codebook, settings.seed)
        progress(f"[retriever] re-rank {scoring.to_dict()} (validation recall@100 "
                 + ", ".join(f"{w}: {r:.3f}" for w, r in tried.items()) + ")")
    evaluation = evaluate(params, config, log, split, settings.seed, scoring, codebook)
    recall = {m: r["recall@100"] for m, r in evaluation["methods"].items()}
    progress("[retriever] held-out recall@100: " + ", ".join(f"{m} {v:.3f}" for m, v in recall.items()))
    hr = {m: r["recall@10"] for m, r in evaluation["leave_last_out"]["segments"]["all"].items()}
    progress("[retriever] leave-last-out HR@10: " + ", ".join(f"{m} {v:.3f}" for m, v in hr.items()))
    metrics = {"train": summary, "eval": evaluation, "scoring": scoring.to_dict(),
               "freshness_validation_recall@100": tried}
    if codebook is not None:
        metrics["codebook"] = codebook
    return params, metrics
