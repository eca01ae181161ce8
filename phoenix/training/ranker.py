"""Train the ranker: per-action binary cross-entropy (plus the dwell-time regression) on
served impressions, then evaluate on the held-out future against the baselines."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import jax
import numpy as np

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import RankerConfig
from phoenix.evaluation.baselines import ranker_baselines
from phoenix.evaluation.ranking import per_action_metrics
from phoenix.features import hash_candidates, rank_batch_of_columns
from phoenix.losses import ranker_init_params, ranker_loss
from phoenix.ranker import predictions, ranker_logits
from phoenix.training.data import (EventLog, RankExamples, Split, collect, features_for, fit_codebook_for, rank_examples,
                                   ranges, split_by_time)
from phoenix.training.loop import TrainSettings, fit, fresh_params, print_progress, validation_split

EVAL_BATCH = 256
# Share of training candidates whose post id is replaced by a random, never-seen one (content,
# semantic ids and age stay the post's own), so the model learns to rank posts it has no id row
# for. Off: on a 150-user world 0.5 moved fresh on-topic posts up only slightly and cost held-out
# favorite AUC (0.762 -> 0.713); not yet measured on larger worlds.
POST_ID_DROPOUT = 0.0


# The ranker's recipe beyond the loop's defaults: input dropout, and a moving average of the
# parameters that validation, early stopping and the checkpoint use (TrainSettings.dropout,
# ema_decay); docs/phoenix.md has the runs behind both.
DROPOUT = 0.1
EMA_DECAY = 0.99


def default_settings(steps: int, config: RankerConfig | None = None) -> TrainSettings:
    """The ranker's training settings; an ids-only (v1) `config` keeps the loop's plain ones."""
    if config is not None and not is_v2(config):
        return TrainSettings(steps=steps)
    return TrainSettings(steps=steps, dropout=DROPOUT, ema_decay=EMA_DECAY)


def is_v2(config: RankerConfig) -> bool:
    """Whether the ranker reads post content or semantic ids (v1: ids only)."""
    return bool(config.inputs.content_dim or config.inputs.sid_levels)


@dataclass(frozen=True)
class RankerData:
    """The example arrays: a RankBatch, labels [N,C,18], dwell [N,C], candidate mask [N,C]."""
    batch: Any
    labels: np.ndarray
    dwell: np.ndarray
    mask: np.ndarray


def as_log(events: EventLog | Iterable) -> EventLog:
    return events if isinstance(events, EventLog) else collect(events)


def ranker_split(log: EventLog, config: RankerConfig, test_fraction: float) -> Split:
    return split_by_time(rank_examples(log, config.history_len, config.num_candidates), test_fraction, log)


def example_arrays(config: RankerConfig, examples: RankExamples, features=None,
                   id_dropout: float = 0.0, seed: int = 0) -> RankerData:
    """The model's arrays of the examples, built from their columns (vectorised)."""
    n, c = len(examples), config.num_candidates
    counts = examples.counts
    if len(counts) and counts.max() > c:
        raise ValueError(f"{int(counts.max())} candidates do not fit num_candidates={c}")
    flat = ranges(examples.offsets[:-1], counts)             # candidate rows, example by example
    row = np.repeat(np.arange(n), counts)
    slot = np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)

    def grid(column, dtype):
        out = np.zeros((n, c), dtype)
        out[row, slot] = column[flat]
        return out
    post_ids, author_ids = grid(examples.post, np.uint64), grid(examples.author, np.uint64)
    history = examples.history.columns(examples.lo, examples.hi, config.history_len)
    batch = rank_batch_of_columns(config, examples.user, history, post_ids, author_ids,
                                  grid(examples.surface, np.int32), features, examples.time)
    if id_dropout > 0:
        rng = np.random.default_rng(seed)
        drop = batch.candidate_mask & (rng.random(batch.candidate_mask.shape) < id_dropout)
        random_ids = rng.integers(1, 2**62, size=int(drop.sum()), dtype=np.uint64)
        batch.candidate_post_hashes[drop] = hash_candidates(config.hash, random_ids, random_ids)[0]
    labels = np.zeros((n, c, NUM_BINARY_ACTIONS), np.float32)
    labels[row, slot] = examples.labels
    return RankerData(batch, labels, grid(examples.dwell, np.float32), batch.candidate_mask)


def with_prior_bias(params, config: RankerConfig, data: RankerData):
    """Start a model with an output bias at the training data's log-odds of each action (and
    the mean log1p dwell for the dwell-time output); unchanged for a model without the bias."""
    if not config.inputs.action_bias:
        return params
    mask = data.mask.astype(bool)
    rates = np.clip(data.labels[mask].mean(axis=0), 1e-4, 1 - 1e-4) if mask.any() else np.full(NUM_BINARY_ACTIONS, 0.5)
    bias = np.zeros(config.num_actions, np.float32)
    bias[:NUM_BINARY_ACTIONS] = np.log(rates / (1 - rates))
    bias[NUM_BINARY_ACTIONS:] = float(np.log1p(np.maximum(data.dwell[mask], 0)).mean()) if mask.any() else 0.0
    inner = dict(params["params"])
    inner["action_bias"] = jax.numpy.asarray(bias)
    return {**params, "params": inner}


def predict(params, config: RankerConfig, examples: RankExamples, features=None) -> np.ndarray:
    """[total candidates, 19] predictions for the examples' candidates, in order."""
    forward = jax.jit(lambda p, b: predictions(ranker_logits(p, config, b)))
    out: list[np.ndarray] = []
    for lo in range(0, len(examples), EVAL_BATCH):
        rows = np.arange(lo, min(lo + EVAL_BATCH, len(examples)))
        if len(examples) > EVAL_BATCH:  # one shape: one compile
            rows = np.concatenate([rows, np.full(EVAL_BATCH - len(rows), rows[-1])])
        part = examples.take(rows)
        probs = np.asarray(forward(params, example_arrays(config, part, features).batch))
        real = min(EVAL_BATCH, len(examples) - lo)
        out.append(probs[:real][np.arange(config.num_candidates) < part.counts[:real, None]])
    return np.concatenate(out) if out else np.zeros((0, config.num_actions), np.float32)


def evaluate(params, config: RankerConfig, split: Split, codebook=None) -> dict:
    """Per-action AUC / log-loss of the model and of every baseline on the held-out examples;
    the model's calibration (sum of predictions / sum of labels) per action."""
    labels = split.test.labels
    probs = predict(params, config, split.test, features_for(config, split.log, codebook))[:, :NUM_BINARY_ACTIONS]
    results = {"model": per_action_metrics(labels, probs, probs)}
    for a, metrics in enumerate(results["model"].values()):
        metrics["calibration"] = float(probs[:, a].sum() / max(labels[:, a].sum(), 1e-9))
    for name, (scores, base_probs) in ranker_baselines(split.train, split.test).items():
        results[name] = per_action_metrics(labels, scores, base_probs)
    return {"test_candidates": int(len(labels)), "cutoff_ms": split.cutoff_ms, "methods": results}


def train(events: EventLog | Iterable, config: RankerConfig, steps: int = 400,
          settings: TrainSettings | None = None, progress: Callable[[str], None] = print_progress,
          params=None, codebook=None) -> tuple[Any, dict]:
    """Train on the events (an EventLog or (topic, message) pairs); returns (params, metrics)
    where metrics has the training summary and the held-out evaluation. `params` / `codebook`:
    warm-start from them (continuous training, follow.py) instead of a fresh model and a newly
    fitted codebook."""
    settings = replace(settings or default_settings(steps, config), steps=steps)
    if not is_v2(config):
        settings = replace(settings, validation_fraction=0.0)  # v1 keeps its fixed-step recipe
    log = as_log(events)
    split = ranker_split(log, config, settings.test_fraction)
    fit_part, validation = validation_split(split.train, settings.validation_fraction)
    progress(f"[ranker] {len(fit_part)} training / {len(validation)} validation / {len(split.test)} held-out "
             f"examples (served before / after {split.cutoff_ms})")
    if codebook is None:
        codebook = fit_codebook_for(log, config.inputs, settings.test_fraction, settings.seed)
    features = features_for(config, log, codebook)
    data = example_arrays(config, fit_part, features, POST_ID_DROPOUT, settings.seed)
    val_data = example_arrays(config, validation, features) if validation else None
    if params is None:
        params = with_prior_bias(fresh_params(ranker_init_params(config, settings.seed)), config, data)

    def loss_fn(p, b: RankerData, key=None):  # key: the step's dropout key (training only)
        return ranker_loss(p, config, b.batch, b.labels, b.dwell, b.mask, dropout=settings.dropout if key is not None
                           else 0.0, rng=key)

    params, summary = fit(loss_fn, params, data, len(fit_part), settings, "ranker", progress,
                          val_data, len(validation))
    evaluation = evaluate(params, config, split, codebook)
    fav = {m: r["favorite"]["auc"] for m, r in evaluation["methods"].items()}
    progress("[ranker] held-out favorite AUC: " + ", ".join(f"{m} {v:.3f}" for m, v in fav.items()))
    metrics = {"train": summary, "eval": evaluation}
    if codebook is not None:
        metrics["codebook"] = codebook  # checkpoints.save writes it beside the parameters
    return params, metrics


jax.tree_util.register_dataclass(RankerData, data_fields=["batch", "labels", "dwell", "mask"], meta_fields=[])
