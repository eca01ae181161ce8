"""The two-tower retriever: unit-norm embeddings, batch independence, exact top-K."""
from __future__ import annotations

import numpy as np

from phoenix.runtime import top_k
from tests.phoenix_model.phoenix_model_helpers import random_history


def test_embeddings_are_unit_norm_float32(retriever_runtime):
    rng = np.random.default_rng(0)
    users = retriever_runtime.user_embeddings([1, 2, 3], [random_history(rng, 8), random_history(rng, 2), []])
    d = retriever_runtime.embedding_dim
    assert users.shape == (3, d) and users.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, atol=1e-5)
    posts = rng.integers(1, 2**62, size=300, dtype=np.uint64)
    authors = rng.integers(1, 10**9, size=300, dtype=np.uint64)
    cands = retriever_runtime.candidate_embeddings(posts, authors)
    assert cands.shape == (300, d) and cands.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cands, axis=1), 1.0, atol=1e-5)
    assert np.abs(users[0] - users[1]).max() > 1e-3  # different users, different embeddings
    assert retriever_runtime.candidate_embeddings(posts[:0], authors[:0]).shape == (0, d)


def test_embeddings_do_not_depend_on_the_rest_of_the_batch(retriever_runtime):
    rng = np.random.default_rng(1)
    history = random_history(rng, 5)
    alone = retriever_runtime.user_embeddings([5], [history])
    batched = retriever_runtime.user_embeddings([9, 5, 8], [random_history(rng, 3), history, []])
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)
    posts = rng.integers(1, 2**62, size=20, dtype=np.uint64)
    authors = rng.integers(1, 10**9, size=20, dtype=np.uint64)
    all_at_once = retriever_runtime.candidate_embeddings(posts, authors)
    one = retriever_runtime.candidate_embeddings(posts[7:8], authors[7:8])
    np.testing.assert_allclose(one[0], all_at_once[7], atol=1e-5)


def test_top_k_agrees_with_brute_force(retriever_runtime):
    rng = np.random.default_rng(2)
    corpus = retriever_runtime.candidate_embeddings(rng.integers(1, 2**62, size=500, dtype=np.uint64),
                                                    rng.integers(1, 10**9, size=500, dtype=np.uint64))
    users = retriever_runtime.user_embeddings([1, 2], [random_history(rng, 6), random_history(rng, 1)])
    idx, scores = top_k(users, corpus, 25)
    assert idx.shape == scores.shape == (2, 25)
    brute = corpus @ users.T
    for row in range(2):
        expected = np.argsort(-brute[:, row], kind="stable")[:25]
        assert idx[row].tolist() == expected.tolist()
        np.testing.assert_allclose(scores[row], brute[expected, row], rtol=1e-6)
    one_idx, one_scores = top_k(users[0], corpus, 3)
    assert one_idx.tolist() == idx[0, :3].tolist() and one_scores.shape == (3,)
    all_idx, _ = top_k(users[0], corpus[:10], 50)  # k larger than the corpus: everything, sorted
    assert sorted(all_idx.tolist()) == list(range(10))


def test_top_k_breaks_ties_by_index():
    corpus = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], np.float32)
    idx, scores = top_k(np.array([1.0, 0.0], np.float32), corpus, 2)
    assert idx.tolist() == [0, 2] and scores.tolist() == [1.0, 1.0]
