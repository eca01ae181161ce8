"""Training losses: the ranker's per-action binary cross-entropy plus a small dwell-time
regression, and the retriever's softmaxes (in-batch negatives; v2 adds sampled and hard
negatives with log-Q correction; the sequential one trains every prefix of a history)."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from phoenix.actions import DWELL_TIME_INDEX, NUM_BINARY_ACTIONS
from phoenix.config import RankerConfig, RetrieverConfig
from phoenix.features import RankBatch, UserBatch
from phoenix.layers import MASKED_LOGIT
from phoenix.rerank import NEGATIVE_INDICES
from phoenix.ranker import ranker_init_params, ranker_logits
from phoenix.retriever import (retriever_candidate_embeddings, retriever_init_params,
                               retriever_prefix_user_embeddings, retriever_user_embeddings)

# history action columns that make an item a positive engagement (for the affinity counts)
POSITIVE_COLUMNS = np.asarray([a for a in range(NUM_BINARY_ACTIONS) if a not in NEGATIVE_INDICES])

__all__ = ["ranker_loss", "retriever_loss", "retriever_sequence_loss", "ranker_init_params",
           "retriever_init_params"]

Metrics = dict[str, jax.Array]


def ranker_loss(params: Any, config: RankerConfig, batch: RankBatch, labels: jax.Array | np.ndarray,
                dwell: jax.Array | np.ndarray, candidate_mask: jax.Array | np.ndarray,
                dwell_weight: float = 0.1, dropout: float = 0.0, rng: jax.Array | None = None
                ) -> tuple[jax.Array, Metrics]:
    """BCE averaged over valid candidates and the 18 actions, plus `dwell_weight` * MSE of the
    dwell-time output against log1p(dwell seconds). labels [B,C,18], dwell [B,C], mask [B,C].
    `dropout`, `rng`: the model's input dropout (training)."""
    logits = ranker_logits(params, config, batch, dropout, rng)
    mask = candidate_mask.astype(jnp.float32)
    count = jnp.maximum(jnp.sum(mask), 1.0)
    bce = optax.sigmoid_binary_cross_entropy(logits[..., :NUM_BINARY_ACTIONS], labels.astype(jnp.float32))
    bce = jnp.sum(bce * mask[..., None]) / (count * NUM_BINARY_ACTIONS)
    dwell_target = jnp.log1p(jnp.maximum(dwell.astype(jnp.float32), 0.0))
    dwell_mse = jnp.sum(jnp.square(logits[..., DWELL_TIME_INDEX] - dwell_target) * mask) / count
    loss = bce + dwell_weight * dwell_mse
    return loss, {"loss": loss, "bce": bce, "dwell_mse": dwell_mse}


def retriever_loss(params: Any, config: RetrieverConfig, users: UserBatch, pos_post_hashes: jax.Array,
                   pos_author_hashes: jax.Array, temperature: float = 0.05) -> tuple[jax.Array, Metrics]:
    """Softmax over the batch's B positives: user i's positive is post i, the others are negatives,
    except other copies of the same post (masked). Rows whose positive is padding are ignored."""
    user = retriever_user_embeddings(params, config, users)
    cand = retriever_candidate_embeddings(params, config, pos_post_hashes, pos_author_hashes)
    logits = (user @ cand.T) / temperature  # [B, B]
    b = logits.shape[0]
    same_post = jnp.all(pos_post_hashes[:, None, :] == pos_post_hashes[None, :, :], axis=-1)
    duplicate = same_post & ~jnp.eye(b, dtype=bool)
    valid = pos_post_hashes[:, 0] != 0
    # Neither a duplicate of the positive nor a padding row is a negative.
    logits = jnp.where(duplicate | ~valid[None, :], MASKED_LOGIT, logits)
    row_valid = valid.astype(jnp.float32)
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(b))
    count = jnp.maximum(jnp.sum(row_valid), 1.0)
    loss = jnp.sum(per_row * row_valid) / count
    accuracy = jnp.sum((jnp.argmax(logits, axis=-1) == jnp.arange(b)) * row_valid) / count
    return loss, {"loss": loss, "in_batch_accuracy": accuracy}


def retriever_loss_v2(params: Any, config: RetrieverConfig, users: UserBatch, pos: dict, neg: dict,
                      hard: dict, pos_log_q: jax.Array, neg_log_q: jax.Array,
                      base_temperature: float = 0.2, ages: dict | None = None,
                      age_edges_h: tuple[float, ...] = (), dropout: float = 0.0,
                      rng: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
    """The v2 retriever softmax. Row i scores its positive against: the other rows' positives
    (in-batch negatives), the batch's sampled global negatives (uniform over the corpus) and
    the row's own hard negatives (posts the user marked not-interested / blocked / muted /
    reported). Log-Q correction: every sampled column's logit has the log of its expected
    count in the sample subtracted (in-batch: B * the post's share of the training positives,
    `pos_log_q` being log of that share; global: G / corpus size, `neg_log_q`), so a popular post
    is not pushed down merely for showing up often as a negative. The temperature is learned:
    `base_temperature * exp(params["temperature"])`. Each of pos / neg / hard is a dict of
    candidate-tower inputs (post_hashes, author_hashes, sids, content) with leading shapes
    [B], [G], [B, H].
    `ages` (hours on one clock: "time" [B] of each row's engagement, "pos" [B], "neg" [G],
    "hard" [B, H] creation of each column's post): a post created after a row's engagement is
    no negative for it (it did not exist yet; the evaluation ranks only existing posts), and
    with `params["age_bias"]` ([len(age_edges_h) + 1]) every logit gets the bias of its
    post's age bucket at the row's time, so the towers learn what recency does not explain
    (the bias is the freshness re-rank's shape, learned with them). `dropout`, `rng`: the user
    tower's input dropout (training steps)."""
    model, t = params["model"], base_temperature * jnp.exp(params["temperature"])
    user = retriever_user_embeddings(model, config, users, dropout, rng)  # [B, D]
    embed = lambda c: retriever_candidate_embeddings(  # noqa: E731
        model, config, c["post_hashes"], c["author_hashes"], c.get("sids"), c.get("content"))
    pos_emb, neg_emb, hard_emb = embed(pos), embed(neg), embed(hard)  # [B, D], [G, D], [B, H, D]
    b = user.shape[0]
    valid = pos["post_hashes"][:, 0] != 0
    same_post = jnp.all(pos["post_hashes"][:, None, :] == pos["post_hashes"][None, :, :], axis=-1)
    duplicate = same_post & ~jnp.eye(b, dtype=bool)
    in_batch = (user @ pos_emb.T) / t - (pos_log_q[None, :] + jnp.log(b))
    in_batch = jnp.where(duplicate | ~valid[None, :], MASKED_LOGIT, in_batch)
    # a sampled global negative equal to a row's positive is not a negative for that row
    neg_same = jnp.all(pos["post_hashes"][:, None, :] == neg["post_hashes"][None, :, :], axis=-1)
    global_logits = jnp.where(neg_same | (neg["post_hashes"][None, :, 0] == 0), MASKED_LOGIT,
                              (user @ neg_emb.T) / t - neg_log_q)
    hard_logits = jnp.einsum("bd,bhd->bh", user, hard_emb) / t
    hard_logits = jnp.where(hard["post_hashes"][..., 0] == 0, MASKED_LOGIT, hard_logits)
    if "affinity" in params:  # the author-affinity term, learned with the towers
        in_batch, global_logits, hard_logits = (
            x + params["affinity"] * jnp.log1p(c) for x, c in zip((in_batch, global_logits, hard_logits),
                                                                 author_engagements(users, pos, neg, hard)))
    logits = jnp.concatenate([in_batch, global_logits, hard_logits], axis=1)
    if ages is not None:
        logits = _with_ages(logits, params.get("age_bias"), ages, age_edges_h)
    row_valid = valid.astype(jnp.float32)
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(b))
    count = jnp.maximum(jnp.sum(row_valid), 1.0)
    loss = jnp.sum(per_row * row_valid) / count
    accuracy = jnp.sum((jnp.argmax(logits, axis=-1) == jnp.arange(b)) * row_valid) / count
    return loss, {"loss": loss, "accuracy": accuracy, "temperature": t}


def author_engagements(users: UserBatch, pos: dict, neg: dict, hard: dict) -> tuple[jax.Array, ...]:
    """([B, B], [B, G], [B, H]) each row's positive history items by the author of each
    in-batch, global and hard column's post (authors compared by their hashes; the count the
    served re-rank reads, phoenix/rerank.py)."""
    history = jnp.asarray(users.history_author_hashes)                       # [B, S, Ha]
    actions = jnp.asarray(users.history_actions)[..., :NUM_BINARY_ACTIONS]
    positive = jnp.any(actions[..., POSITIVE_COLUMNS] > 0, axis=-1) & (history[..., 0] != 0)  # [B, S]

    def count(authors: jax.Array, per_row: bool) -> jax.Array:
        if per_row:  # [B, H, Ha]: each row's own columns
            same = jnp.all(history[:, None, :, :] == authors[:, :, None, :], axis=-1)   # [B, H, S]
        else:        # [C, Ha]: every row against every column
            same = jnp.all(history[:, None, :, :] == authors[None, :, None, :], axis=-1)  # [B, C, S]
        return jnp.sum(same & positive[:, None, :], axis=-1).astype(jnp.float32)
    return (count(jnp.asarray(pos["author_hashes"]), False), count(jnp.asarray(neg["author_hashes"]), False),
            count(jnp.asarray(hard["author_hashes"]), True))


def _with_ages(logits: jax.Array, age_bias: jax.Array | None, ages: dict, edges_h: tuple[float, ...]) -> jax.Array:
    """[B, B + G + H] logits (in-batch, global, hard columns) with future posts masked (never a
    row's own positive, on the diagonal) and, with `age_bias`, each column's age-bucket bias."""
    time = ages["time"][:, None]
    age = jnp.concatenate([time - ages["pos"][None, :], time - jnp.broadcast_to(ages["neg"][None, :],
                                                                                 (time.shape[0], ages["neg"].shape[0])),
                           time - ages["hard"]], axis=1)
    own = jnp.zeros(logits.shape, bool).at[jnp.arange(logits.shape[0]), jnp.arange(logits.shape[0])].set(True)
    if age_bias is not None:
        bucket = jnp.searchsorted(jnp.asarray(edges_h, jnp.float32), jnp.maximum(age, 0.0), side="right")
        logits = logits + age_bias[bucket]
    return jnp.where((age < 0) & ~own, MASKED_LOGIT, logits)


def retriever_sequence_loss(params: Any, config: RetrieverConfig, users: UserBatch, targets: dict,
                            target_valid: jax.Array, target_share: jax.Array, user_key: jax.Array,
                            neg: dict, neg_share: jax.Array, hard: dict, corpus_size: int,
                            base_temperature: float = 0.2, dropout: float = 0.0,
                            rng: jax.Array | None = None) -> tuple[jax.Array, Metrics]:
    """The sequential (every-prefix) retriever softmax, as SASRec trains: each of B windows of a
    user's engagements is one causal pass; position i (the user after the window's first i
    items) must retrieve item i. Row (b, i) scores its target against
      - every other target of the batch (in-batch negatives), except the same user's own
        engagements (they are not negatives for that user: earlier ones are history, which a
        feed never re-serves; later ones are positives) and other copies of its own post;
      - the batch's G sampled global negatives (uniform over the corpus), except its own post;
      - the window's own hard negatives (posts the user marked not-interested / blocked /
        muted / reported).
    Log-Q correction (mixed negative sampling): every in-batch or global column of post j has
    log E[count of j among the sampled columns] = log(T * p_j + G / corpus_size) subtracted,
    T the batch's valid targets and p_j (`target_share`, `neg_share`) j's share of all training
    targets; the softmax then estimates the full-corpus one, so a popular post is not pushed
    down merely for turning up often as a negative. Hard negatives are chosen, not sampled: no
    correction. The temperature is learned: `base_temperature * exp(params["temperature"])`.
    targets / hard / neg: candidate-tower inputs (post_hashes, author_hashes, sids, content)
    with leading shapes [B, 1+S], [B, H], [G]; target_valid / target_share [B, 1+S];
    user_key [B] (equal for windows of one user). `dropout`, `rng`: the user tower's input
    dropout (training steps; validation passes none)."""
    model, t = params["model"], base_temperature * jnp.exp(params["temperature"])
    user = retriever_prefix_user_embeddings(model, config, users, dropout, rng)  # [B, P, D]
    b, p, d = user.shape
    embed = lambda c: retriever_candidate_embeddings(  # noqa: E731
        model, config, c["post_hashes"], c["author_hashes"], c.get("sids"), c.get("content"))
    rows = user.reshape(b * p, d)
    cand = embed(targets).reshape(b * p, d)
    neg_emb, hard_emb = embed(neg), embed(hard)  # [G, D], [B, H, D]
    valid = target_valid.reshape(-1)
    n_valid = jnp.maximum(jnp.sum(valid.astype(jnp.float32)), 1.0)
    g = neg_emb.shape[0]
    sampled = g / float(max(corpus_size, 1))
    post = targets["post_hashes"].reshape(b * p, -1)
    owner = jnp.repeat(user_key, p)
    same_post = jnp.all(post[:, None, :] == post[None, :, :], axis=-1)
    own = jnp.eye(b * p, dtype=bool)
    excluded = ((owner[:, None] == owner[None, :]) | same_post) & ~own
    in_batch = rows @ cand.T / t - jnp.log(n_valid * target_share.reshape(-1) + sampled)[None, :]
    in_batch = jnp.where(excluded | ~valid[None, :], MASKED_LOGIT, in_batch)
    neg_same = jnp.all(post[:, None, :] == neg["post_hashes"][None, :, :], axis=-1)
    global_logits = rows @ neg_emb.T / t - jnp.log(n_valid * neg_share + sampled)[None, :]
    global_logits = jnp.where(neg_same | (neg["post_hashes"][None, :, 0] == 0), MASKED_LOGIT, global_logits)
    hard_logits = jnp.einsum("bpd,bhd->bph", user, hard_emb) / t
    hard_same = jnp.all(post.reshape(b, p, 1, -1) == hard["post_hashes"][:, None, :, :], axis=-1)
    hard_logits = jnp.where(hard_same | (hard["post_hashes"][:, None, :, 0] == 0), MASKED_LOGIT, hard_logits)
    logits = jnp.concatenate([in_batch, global_logits, hard_logits.reshape(b * p, -1)], axis=1)
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(b * p))
    weight = valid.astype(jnp.float32)
    loss = jnp.sum(per_row * weight) / n_valid
    accuracy = jnp.sum((jnp.argmax(logits, axis=-1) == jnp.arange(b * p)) * weight) / n_valid
    return loss, {"loss": loss, "accuracy": accuracy, "temperature": t}
