"""The corpus index: exact search against brute force, free-slot reuse, deletes, expiry,
exclusions that eat the first fetch, the freshness re-rank, and the ANN backend's recall
against exact search."""
from __future__ import annotations

import numpy as np
import pytest

from foryou import snowflake
from phoenix.rerank import Affinity, Freshness, Scoring
from phoenix.index import FETCH_MARGIN, FRESHNESS_OVERFETCH, CorpusIndex, Exclusions, created_ms_of, recall_at_k


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


def test_exact_search_masks_each_querys_exclusions(filled):
    """Each query of a batch gets its own exclusions (post ids, unknown ids among them, and
    authors), with free slots in the index and fewer allowed posts than k for one query."""
    index, posts, authors, vectors, rng = filled
    index.remove(posts[:20])
    queries = unit(rng, 3)
    exclusions = [Exclusions(frozenset(posts[20:60]) | {123456789}, frozenset({3, 4})), Exclusions(),
                  Exclusions(author_ids=frozenset(range(1, 10)))]   # only author 10: 28 posts left
    for q, ex, got in zip(queries, exclusions, index.search(queries, 40, exclusions)):
        allowed = [i for i in range(20, 300) if posts[i] not in ex.post_ids and authors[i] not in ex.author_ids]
        want = sorted(allowed, key=lambda i: -(vectors[i] @ q))[:40]
        assert [p.post_id for p in got] == [posts[i] for i in want]
        assert [p.author_id for p in got] == [authors[i] for i in want]
    assert len(index.search(queries[2:], 40, exclusions[2:])[0]) == 28


def test_the_freshness_rerank_pool_is_the_most_similar_allowed_posts():
    """The pool is the `k * FRESHNESS_OVERFETCH + FETCH_MARGIN` most similar posts left after
    the exclusions: a new post last in it wins, a newer one just below it stays out."""
    now = 1_800_000_000_000
    pool = FRESHNESS_OVERFETCH + FETCH_MARGIN
    n = pool + 2   # post 0 excluded, posts 1..pool the pool, the last one outside
    ages_h = np.full(n, 100)
    ages_h[pool], ages_h[pool + 1] = 1, 0
    posts = [snowflake.make_id(now - int(a) * HOUR_MS, i) for i, a in enumerate(ages_h)]
    vectors = np.zeros((n, 2), np.float32)
    vectors[:, 0] = 0.9 - 0.01 * np.arange(n)   # post 0 most similar
    index = CorpusIndex(2)
    index.upsert(posts, list(range(1, n + 1)), vectors)
    excluded = Exclusions(frozenset(posts[:1]))
    got = index.search(np.array([1.0, 0.0], np.float32), 1, [excluded], scoring=Scoring(Freshness(1.0)), now_ms=now)[0]
    assert [p.post_id for p in got] == [posts[pool]]


@pytest.mark.parametrize("ann", [False, True])
def test_affinity_pools_the_engaged_authors_posts_whatever_their_similarity(ann):
    """An engaged author's least similar post joins the re-rank pool and wins with the bonus
    weight * log1p(engagements); excluded posts and authors stay out; a re-upsert under another
    author and a removal move the post out of its author's list."""
    n = 200
    posts = ids(n)
    vectors = np.zeros((n, 2), np.float32)
    vectors[:, 0] = np.linspace(1.0, -1.0, n)   # post 0 most similar, post n-1 least
    authors = [1] * (n - 1) + [2]
    index = CorpusIndex(2, ann_threshold=0 if ann else 10_000)
    index.upsert(posts, authors, vectors)
    query = np.array([1.0, 0.0], np.float32)
    got = index.search(query, 2, scoring=Scoring(affinity=Affinity(3.0)), engaged=[{2: 3}])[0]
    assert [p.post_id for p in got] == [posts[-1], posts[0]]
    assert got[0].score == pytest.approx(-1.0 + 3.0 * np.log1p(3))
    assert index.search(query, 2, engaged=[{2: 3}])[0][0].post_id == posts[0]   # no weight: no bonus
    for ex in (Exclusions(frozenset(posts[-1:])), Exclusions(author_ids=frozenset({2}))):
        assert posts[-1] not in [p.post_id for p in index.search(query, 2, [ex], scoring=Scoring(affinity=Affinity(3.0)),
                                                                  engaged=[{2: 3}])[0]]
    index.upsert(posts[-1:], [3], vectors[-1:])   # the post changes author: author 2 has none now
    assert index.search(query, 1, scoring=Scoring(affinity=Affinity(3.0)), engaged=[{2: 3}])[0][0].post_id == posts[0]
    assert index.search(query, 1, scoring=Scoring(affinity=Affinity(3.0)), engaged=[{3: 1}])[0][0].post_id == posts[-1]
    index.remove(posts[-1:])
    assert index.search(query, 1, scoring=Scoring(affinity=Affinity(3.0)), engaged=[{3: 1}])[0][0].post_id == posts[0]


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


HOUR_MS = 3_600_000


def test_freshness_reranks_by_similarity_plus_weighted_log_age():
    now = 1_800_000_000_000
    # Post i is i hours old; older posts are slightly more similar to the query.
    ages_h = np.arange(8)
    posts = [snowflake.make_id(now - int(a) * HOUR_MS, int(a)) for a in ages_h]
    vectors = np.zeros((8, 2), np.float32)
    vectors[:, 0] = 0.5 + 0.01 * ages_h
    index = CorpusIndex(2)
    index.upsert(posts, list(range(1, 9)), vectors)
    query = np.array([1.0, 0.0], np.float32)

    plain = index.search(query, 3)[0]
    assert [p.post_id for p in plain] == posts[::-1][:3]  # similarity alone: oldest first
    assert index.search(query, 3, scoring=Scoring(Freshness(0.0)), now_ms=now)[0] == plain

    fresh = index.search(query, 3, scoring=Scoring(Freshness(0.1)), now_ms=now)[0]
    assert [p.post_id for p in fresh] == posts[:3]  # the newest win once age counts
    expected = vectors[:3, 0] - 0.1 * np.log1p(ages_h[:3])
    np.testing.assert_allclose([p.score for p in fresh], expected, rtol=1e-5)
    np.testing.assert_array_equal(created_ms_of(posts[:3]), now - ages_h[:3] * HOUR_MS)


def test_freshness_reranks_only_what_similarity_overfetched():
    now = 1_800_000_000_000
    k = 2
    n = k * FRESHNESS_OVERFETCH + 16 + 10  # the newest 10 fall outside the over-fetch
    # Similarity falls with recency: the newest posts are the least similar.
    posts = [snowflake.make_id(now - (n - i) * HOUR_MS, i) for i in range(n)]
    vectors = np.stack([np.linspace(1.0, 0.0, n), np.zeros(n)], axis=1).astype(np.float32)
    index = CorpusIndex(2)
    index.upsert(posts, [1] * n, vectors)
    got = index.search(np.array([1.0, 0.0], np.float32), k, scoring=Scoring(Freshness(100.0)), now_ms=now)[0]
    fetched = set(posts[:n - 10])
    assert len(got) == k and {p.post_id for p in got} <= fetched
    assert [p.post_id for p in got] == [posts[n - 11], posts[n - 12]]  # newest of the fetched


def test_affinity_search_equals_brute_force_over_the_whole_corpus(filled):
    """With the engaged authors' posts pooled, the top k is the brute-force top k of
    similarity + weight * log1p(engagements) over every post, whatever the pool bounds."""
    index, posts, authors, vectors, rng = filled
    engaged = {3: 2, 7: 1}
    counts = np.array([engaged.get(a, 0) for a in authors])
    for q in unit(rng, 5):
        got = index.search(q, 5, scoring=Scoring(affinity=Affinity(0.5)), engaged=[engaged])[0]
        want = np.argsort(-(vectors @ q + 0.5 * np.log1p(counts)), kind="stable")[:5]
        assert [p.post_id for p in got] == [posts[i] for i in want]
