"""Approximate nearest-neighbour search for the corpus index: an HNSW graph from usearch,
keyed by post id, inner-product metric over unit vectors. CorpusIndex owns the metadata and
decides when to use it; this class only wraps usearch's add/remove/search."""
from __future__ import annotations

import numpy as np
from typing import cast

from usearch.index import BatchMatches, Index

# HNSW parameters (bench/phoenix_service.py measures recall@100 against exact search):
# expansion_add 64 halves the build time of 128 on 2 cores; search widens to k when k is larger.
CONNECTIVITY = 16
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128


class AnnIndex:
    def __init__(self, dim: int, expansion_search: int = EXPANSION_SEARCH) -> None:
        self.dim = dim
        self._index = Index(ndim=dim, metric="ip", dtype="f32", connectivity=CONNECTIVITY,
                            expansion_add=EXPANSION_ADD, expansion_search=expansion_search)

    def __len__(self) -> int:
        return len(self._index)

    def upsert(self, post_ids: np.ndarray, vectors: np.ndarray) -> None:
        post_ids = np.asarray(post_ids, np.uint64)
        present = np.array([key in self._index for key in post_ids.tolist()], bool)
        if present.any():  # usearch keeps one vector per key: replace = remove + add
            self._index.remove(post_ids[present])
        self._index.add(post_ids, np.ascontiguousarray(vectors, np.float32), threads=0)

    def remove(self, post_ids: np.ndarray) -> None:
        self._index.remove(np.asarray(post_ids, np.uint64))

    def search(self, queries: np.ndarray, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per query: (post ids, dot-product scores), best first, at most n each."""
        # HNSW needs a search beam at least as wide as the result count.
        # usearch defines this setter apart from its getter, which mypy reads as read-only
        self._index.expansion_search = max(self._index.expansion_search, n)  # type: ignore[misc]
        matches = self._index.search(np.ascontiguousarray(queries, np.float32), n, threads=0)
        if len(queries) == 1:  # usearch answers one query with a trimmed `Matches`
            return [np.asarray(matches.keys)], [1.0 - np.asarray(matches.distances)]
        batch = cast(BatchMatches, matches)  # several queries: one row per query
        keys, distances, counts = batch.keys, batch.distances, batch.counts
        return ([keys[i, : counts[i]] for i in range(len(counts))],
                [1.0 - distances[i, : counts[i]] for i in range(len(counts))])
