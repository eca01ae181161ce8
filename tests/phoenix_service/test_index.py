"""The corpus index: exact search against brute force, free-slot reuse, deletes, expiry,
exclusions that eat the first fetch, and the ANN backend's recall against exact search."""
from __future__ import annotations

import numpy as np
import pytest

from foryou import snowflake
from phoenix.index import CorpusIndex, Exclusions, recall_at_k


def unit(rng, n, d=16):
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def ids(n, age_ms=0):
    now = snowflake.now_ms() - age_ms
    return [snowflake.make_id(now - i, i) for i in range(n)]


@pytest.fixture
def filled():
    rng = np.random.default_rng(0)
    vectors = unit(rng, 300)
    posts = ids(300)
    authors = [i % 10 + 1 for i in range(300)]
    index = CorpusIndex(16, initial_capacity=8)  # forces growth
    index.upsert(posts, authors, vectors)
    return index, posts, authors, vectors, rng


def test_exact_search_matches_brute_force(filled):
    index, posts, _, vectors, rng = filled
    queries = unit(rng, 5)
    results = index.search(queries, 7)
    for q, got in zip(queries, results):
        want = np.argsort(-(vectors @ q))[:7]
        assert [p.post_id for p in got] == [posts[i] for i in want]
        np.testing.assert_allclose([p.score for p in got], (vectors @ q)[want], rtol=1e-5)


def test_removed_posts_free_their_slot_and_are_never_returned(filled):
    index, posts, authors, vectors, rng = filled
    assert index.remove(posts[:50] + [12345]) == 50
    assert len(index) == 250
    found = {p.post_id for p in index.search(vectors[:50], 300)[0]}
    assert not found & set(posts[:50]) and len(found) == 250
    new = ids(30, age_ms=10)
    index.upsert(new, [99] * 30, unit(rng, 30))
    assert len(index) == 280 and index._high == 300  # reused freed slots, no growth


def test_upsert_of_a_known_post_replaces_its_vector(filled):
    index, posts, authors, vectors, _ = filled
    index.upsert([posts[3]], [authors[3]], -vectors[3:4])
    assert len(index) == 300
    np.testing.assert_allclose(index.vector(posts[3]), -vectors[3])


def test_expire_drops_posts_older_than_the_retention():
    index = CorpusIndex(4)
    old, fresh = ids(3, age_ms=3_600_000), ids(2)
    index.upsert(old + fresh, [1] * 5, np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]])
    assert index.expire(snowflake.now_ms(), max_age_ms=600_000) == 3
    assert set(index.posts()[0].tolist()) == set(fresh)


def test_exclusions_that_eat_the_first_fetch_still_give_k_results(filled):
    index, posts, authors, vectors, rng = filled
    allowed_author = 7
    excluded = Exclusions(frozenset(posts[:5]), frozenset(a for a in range(1, 11) if a != allowed_author))
    got = index.search(unit(rng, 1), 20, [excluded])[0]
    assert len(got) == 20
    assert all(p.author_id == allowed_author and p.post_id not in posts[:5] for p in got)


def test_search_of_an_empty_or_small_index():
    index = CorpusIndex(4)
    assert index.search(np.ones((2, 4), np.float32), 5) == [[], []]
    index.upsert(ids(2), [1, 2], np.eye(4, dtype=np.float32)[:2])
    assert len(index.search(np.ones(4, np.float32), 5)[0]) == 2


def test_ann_backend_recall_against_exact_search():
    rng = np.random.default_rng(1)
    n = 5000
    index = CorpusIndex(32, ann_threshold=n - 1)
    index.upsert(ids(n), [i % 50 + 1 for i in range(n)], unit(rng, n, 32))
    assert index.uses_ann  # crossed the threshold
    queries = unit(rng, 50, 32)
    approx, exact = index.search(queries, 50), index.search(queries, 50, exact=True)
    assert recall_at_k(approx, exact) >= 0.9
    gone = [p.post_id for p in exact[0][:10]]
    index.remove(gone)
    assert not {p.post_id for p in index.search(queries[:1], 50)[0]} & set(gone)
