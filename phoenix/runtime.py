"""What servers, training and tools call: parameters plus jitted functions; numpy in, numpy out.

Shapes are bucketed (candidate counts to powers of two up to 1,024, users per micro-batch to
powers of two) so a server compiles a handful of functions once and then never again.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from foryou import snowflake
from phoenix.config import RankerConfig, RetrieverConfig
from phoenix.content import ContentStore, PostFeatureView
from phoenix.features import (MAX_CANDIDATE_CHUNK, CandidateItem, Candidates, HistoryItem, RankBatch, batch_bucket,
                              candidate_bucket, candidate_inputs, hash_candidates, make_rank_batch, make_user_batch)
from phoenix.ranker import (CandidateContext, PrefixCache, predictions, ranker_candidate_tables, ranker_init_params,
                            ranker_logits, ranker_logits_prefix_path, ranker_prefix, ranker_score_candidates)
from phoenix.sid import Codebook
from phoenix.retriever import retriever_candidate_embeddings, retriever_init_params, retriever_user_embeddings

Request = tuple[int, Sequence[HistoryItem], Sequence[CandidateItem] | Candidates]

WARMUP_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024)
# Up to one chunk, prefix and candidates run as one compiled call (one dispatch; the prefix
# K/V never leave XLA); more candidates go through _rank_chunked.
FUSED_MAX_CANDIDATES = MAX_CANDIDATE_CHUNK
CANDIDATE_EMBEDDING_CHUNK = 4096
# A request of at least this many candidates is ranked in a call of its own (and closes its
# server micro-batch at once): its candidates are most of the cost, so company saves nothing,
# and smaller requests batched with it would be padded to its bucket.
RANK_ALONE_CANDIDATES = 256


@dataclasses.dataclass(frozen=True)
class Ranked:
    """One request's ranking: predictions [N, 19] and, for a model with content input, the
    content vectors [N, content_dim] the model read for the candidates as float16 (the store's
    precision, so exactly those numbers; else None), taken from the batch rather than looked
    up again (the same numbers, and no second gather)."""
    predictions: np.ndarray
    content: np.ndarray | None



class RankerRuntime:
    """The ranker's serving surface: `rank` uses the prefix cache; `rank_full_sequence` is the plain
    reference-style pass (passes of `config.num_candidates`), kept for tests and benchmarks."""

    def __init__(self, config: RankerConfig, params: Any, codebook: Codebook | None = None,
                 store: ContentStore | None = None):
        self.config = config
        cfg = config
        self.codebook = codebook
        self.features = PostFeatureView(store or ContentStore(), codebook)
        # Serving keeps the candidate projection folded into the hash tables (one extra copy of
        # the post/author tables), so scoring a candidate starts from summed rows.
        self._tables_fn = jax.jit(lambda p: ranker_candidate_tables(p, cfg))
        self.params = params
        # Each ranking call also returns the candidates' content as float16 (the reply's precision),
        # converted by XLA inside the call: numpy's float16 conversion costs more than the model's
        # whole input side.
        self._rank_fn = jax.jit(lambda p, t, b: (predictions(ranker_logits_prefix_path(p, cfg, b, t)),
                                                 _float16(b.candidate_content)))
        self._full_fn = jax.jit(lambda p, b: predictions(ranker_logits(p, cfg, b)))
        self._prefix_fn = jax.jit(lambda p, users: ranker_prefix(p, cfg, users))
        self._score_fn = jax.jit(lambda p, t, cache, post, author, surface, first, context: (predictions(
            ranker_score_candidates(p, cfg, cache, post, author, surface, first, t, context)),
            _float16(context.content)))

    def use_store(self, store: ContentStore) -> None:
        """Read content vectors (and this model's semantic ids) from `store` (the server's corpus)."""
        self.features = PostFeatureView(store, self.codebook)

    @property
    def params(self) -> Any:
        return self._params

    @params.setter
    def params(self, value: Any) -> None:
        """New parameters (e.g. a reloaded checkpoint); the folded tables follow them."""
        self._params = jax.device_put(value)
        self._tables = self._tables_fn(self._params)

    @classmethod
    def init(cls, config: RankerConfig, seed: int = 0) -> "RankerRuntime":
        return cls(config, ranker_init_params(config, seed))

    def _batch(self, user_ids, histories, candidates, num_candidates=None, now_ms=None) -> RankBatch:
        now = snowflake.now_ms() if now_ms is None else now_ms
        return make_rank_batch(self.config, user_ids, histories, candidates, num_candidates,
                               features=self.features, now_ms=now)

    @property
    def num_outputs(self) -> int:
        return self.config.num_actions

    def rank(self, user_id: int, history: Sequence[HistoryItem], candidates: Sequence[CandidateItem] | Candidates,
             now_ms: int | None = None) -> np.ndarray:
        """[len(candidates), 19] float32: 18 action probabilities, then dwell time. `now_ms` is
        the impression time for the post-age input (default: now)."""
        return self._rank_one(user_id, history, Candidates.of(candidates), now_ms).predictions

    def _rank_one(self, user_id: int, history: Sequence[HistoryItem], candidates: Candidates,
                  now_ms: int | None) -> Ranked:
        n = len(candidates)
        if n == 0:
            return Ranked(np.zeros((0, self.num_outputs), np.float32), self._no_content())
        now_ms = snowflake.now_ms() if now_ms is None else now_ms
        if n <= FUSED_MAX_CANDIDATES:
            batch = self._batch([user_id], [history], [candidates], now_ms=now_ms)
            out, content = self._rank_fn(self.params, self._tables, batch)
            return Ranked(np.asarray(out)[0, :n], _content_rows(content, 0, n))
        return self._rank_chunked(user_id, history, candidates, now_ms)

    def _no_content(self) -> np.ndarray | None:
        dim = self.config.inputs.content_dim
        return np.zeros((0, dim), np.float16) if dim else None

    def _rank_chunked(self, user_id: int, history: Sequence[HistoryItem], candidates: Candidates,
                      now_ms: int) -> Ranked:
        """The prefix once, then chunks of up to MAX_CANDIDATE_CHUNK candidates against its K/V."""
        users = make_user_batch(self.config, [user_id], [history], self.features)
        cache: PrefixCache = self._prefix_fn(self.params, users)
        outputs: list[np.ndarray] = []
        contents: list[np.ndarray | None] = []
        for start in range(0, len(candidates), MAX_CANDIDATE_CHUNK):
            chunk = candidates[start:start + MAX_CANDIDATE_CHUNK]
            batch = self._batch([0], [[]], [chunk], candidate_bucket(len(chunk)), now_ms)
            out, content = self._score_fn(self.params, self._tables, cache, batch.candidate_post_hashes,
                                          batch.candidate_author_hashes, batch.candidate_surface, jnp.int32(start),
                                          CandidateContext.of(batch))
            outputs.append(np.asarray(out)[0, :len(chunk)])
            contents.append(_content_rows(content, 0, len(chunk)))
        content = None if contents[0] is None else np.concatenate([c for c in contents if c is not None])
        return Ranked(np.concatenate(outputs), content)

    def rank_many(self, requests: Sequence[Request], now_ms: int | None = None) -> list[np.ndarray]:
        """Several users (server micro-batching): the small requests in one call, each of the others
        alone (RANK_ALONE_CANDIDATES); the same numbers as `rank` per request."""
        return [ranked.predictions for ranked in self.rank_many_ranked(requests, now_ms)]

    def rank_many_ranked(self, requests: Sequence[Request], now_ms: int | None = None) -> list[Ranked]:
        """`rank_many` with each request's content vectors (the server's Rank reply)."""
        if not requests:
            return []
        now_ms = snowflake.now_ms() if now_ms is None else now_ms
        rows = [(user, history, Candidates.of(cands)) for user, history, cands in requests]
        together = [i for i, (_, _, c) in enumerate(rows) if 0 < len(c) < RANK_ALONE_CANDIDATES]
        ranked = dict(zip(together, self._rank_together([rows[i] for i in together], now_ms))) \
            if len(together) > 1 else {}
        return [ranked[i] if i in ranked else self._rank_one(*row, now_ms=now_ms) for i, row in enumerate(rows)]

    def _rank_together(self, rows: list[tuple[int, Sequence[HistoryItem], Candidates]], now_ms: int) -> list[Ranked]:
        """Several users' candidates in one call, each row padded to the longest's bucket."""
        padded = rows + [(0, (), Candidates.of(()))] * (batch_bucket(len(rows)) - len(rows))
        batch = self._batch([r[0] for r in padded], [r[1] for r in padded], [r[2] for r in padded],
                            now_ms=now_ms)
        out, content = self._rank_fn(self.params, self._tables, batch)
        out = np.asarray(out)
        return [Ranked(out[i, :len(c)], _content_rows(content, i, len(c))) for i, (_, _, c) in enumerate(rows)]

    def rank_full_sequence(self, user_id: int, history: Sequence[HistoryItem],
                           candidates: Sequence[CandidateItem], now_ms: int | None = None) -> np.ndarray:
        """The plain pass: candidates in passes of `num_candidates`, each pass recomputing the
        prefix (the passes run as one batch, bucketed to a power of two)."""
        n, per_pass = len(candidates), self.config.num_candidates
        if n == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        passes = batch_bucket(-(-n // per_pass))
        one = self._batch([user_id], [history], [candidates], passes * per_pass, now_ms)
        fields = {f.name: getattr(one, f.name) for f in dataclasses.fields(RankBatch)}
        passed: dict[str, Any] = {  # RankBatch fields; the optional ones may be None
            name: None if value is None else
            value.reshape(passes, per_pass, *value.shape[2:]) if name.startswith("candidate_") else
            np.repeat(value, passes, axis=0)
            for name, value in fields.items()}
        batch = RankBatch(**passed)
        return np.asarray(self._full_fn(self.params, batch)).reshape(-1, self.num_outputs)[:n]

    def warmup(self, buckets: Sequence[int] = WARMUP_BUCKETS, batch_sizes: Sequence[int] = (1,)) -> None:
        """Compile ahead of traffic: every candidate bucket, for each micro-batch size."""
        for users in sorted({batch_bucket(b) for b in batch_sizes}):
            for size in buckets:
                requests = [(u + 1, (), [CandidateItem(1, 1)] * size) for u in range(users)]
                self.rank_many(requests)


class RetrieverRuntime:
    def __init__(self, config: RetrieverConfig, params: Any, codebook: Codebook | None = None,
                 store: ContentStore | None = None):
        self.config = config
        self.params = jax.device_put(params)
        self.codebook = codebook
        self.features = PostFeatureView(store or ContentStore(), codebook)
        cfg = config
        self._user_fn = jax.jit(lambda p, users: retriever_user_embeddings(p, cfg, users))
        self._candidate_fn = jax.jit(lambda p, post, author, sids, content: retriever_candidate_embeddings(
            p, cfg, post, author, sids, content))

    def use_store(self, store: ContentStore) -> None:
        self.features = PostFeatureView(store, self.codebook)

    @classmethod
    def init(cls, config: RetrieverConfig, seed: int = 0) -> "RetrieverRuntime":
        return cls(config, retriever_init_params(config, seed))

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def user_embeddings(self, user_ids: Sequence[int], histories: Sequence[Sequence[HistoryItem]]) -> np.ndarray:
        """[B, D] float32 unit-norm user embeddings."""
        b = len(user_ids)
        if b == 0:
            return np.zeros((0, self.embedding_dim), np.float32)
        pad = batch_bucket(b) - b
        users = make_user_batch(self.config, list(user_ids) + [0] * pad, list(histories) + [[]] * pad,
                                self.features)
        return np.asarray(self._user_fn(self.params, users))[:b]

    def candidate_embeddings(self, post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        """[N, D] float32 unit-norm candidate embeddings, computed in padded chunks."""
        post_ids = np.asarray(post_ids, np.uint64).reshape(-1)
        author_ids = np.asarray(author_ids, np.uint64).reshape(-1)
        if post_ids.shape != author_ids.shape:
            raise ValueError("post_ids and author_ids differ in length")
        n = post_ids.shape[0]
        out = np.zeros((n, self.embedding_dim), np.float32)
        for start in range(0, n, CANDIDATE_EMBEDDING_CHUNK):
            stop = min(start + CANDIDATE_EMBEDDING_CHUNK, n)
            width = _embedding_bucket(stop - start)
            post = np.zeros(width, np.uint64)
            author = np.zeros(width, np.uint64)
            post[:stop - start], author[:stop - start] = post_ids[start:stop], author_ids[start:stop]
            post_h, author_h = hash_candidates(self.config.hash, post, author)
            extra = candidate_inputs(self.config, post, self.features)
            out[start:stop] = np.asarray(self._candidate_fn(self.params, post_h, author_h,
                                                            extra.get("candidate_sids"),
                                                            extra.get("candidate_content")))[:stop - start]
        return out


def _float16(content: jax.Array | None) -> jax.Array | None:
    return None if content is None else content.astype(jnp.float16)


def _content_rows(content: jax.Array | None, row: int, n: int) -> np.ndarray | None:
    """The first `n` candidates' content vectors [n, Dc] of one batch row, float16 (None: no
    content input)."""
    return None if content is None else np.asarray(content)[row, :n]


def _embedding_bucket(n: int) -> int:
    return max(8, 1 << (int(n) - 1).bit_length())


def top_k(user_emb: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by dot product: (indices, scores), best first, ties broken by lower index.
    user_emb [D] -> [k] results; [B, D] -> [B, k]. k is capped at the corpus size."""
    users = np.asarray(user_emb, np.float32)
    single = users.ndim == 1
    users = users[None] if single else users
    corpus = np.asarray(corpus, np.float32)
    k = max(0, min(int(k), corpus.shape[0]))
    scores = users @ corpus.T  # [B, N]
    if k == 0:
        idx = np.zeros((users.shape[0], 0), np.int64)
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < corpus.shape[0] else \
            np.tile(np.arange(corpus.shape[0]), (users.shape[0], 1))
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.lexsort((part, -part_scores), axis=1)
        idx = np.take_along_axis(part, order, axis=1)
    top_scores = np.take_along_axis(scores, idx, axis=1)
    return (idx[0], top_scores[0]) if single else (idx, top_scores)
