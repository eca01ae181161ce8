"""The retriever's author-affinity re-rank (phoenix/rerank.py): what it counts, how it round-trips
through scoring.json, and its maximum-likelihood fit jointly with the freshness biases
(phoenix/training/affinity.py, freshness.py) recovering a known weight on toy data."""
import numpy as np

from foryou import snowflake
from foryou_protos import common_pb2
from phoenix.evaluation.retrieval import Seen
from phoenix.features import HistoryItem
from phoenix.rerank import Affinity, Freshness, Scoring, author_counts, count_matrix, engaged_authors
from phoenix.training.affinity import MAX_LEVEL, cell_features, fit_cell_logit, levels
from phoenix.training.data import RetrieveExample
from phoenix.training.event_log import Engagements
from phoenix.training.freshness import AGE_EDGES_H, BIAS_L2, bucket_tables, fit_freshness

HOUR_MS = 3_600_000
FAV, BLOCK = common_pb2.FAVORITE - 1, common_pb2.BLOCK_AUTHOR - 1  # model action indices


def test_engaged_authors_counts_positive_items_of_the_model_history():
    history = [HistoryItem(1, 10, (FAV,)), HistoryItem(2, 10, (FAV,)), HistoryItem(3, 20, (BLOCK,)),
               HistoryItem(4, 30, (FAV, BLOCK)), HistoryItem(5, 10, (FAV,))]
    assert engaged_authors(history, 5) == {10: 3, 30: 1}   # negative feedback alone is no engagement
    assert engaged_authors(history, 2) == {10: 1, 30: 1}   # the last history_len items only
    assert engaged_authors(history, 0) == {}
    assert author_counts({10: 3, 30: 1}, np.array([30, 11, 10, 10], np.uint64)).tolist() == [1, 0, 3, 3]
    assert author_counts({}, np.array([1], np.uint64)).tolist() == [0]
    assert count_matrix([history, []], np.array([10, 20], np.uint64), 5).tolist() == [[3, 0], [0, 0]]


def test_affinity_bonus_and_scoring_round_trip():
    assert np.allclose(Affinity(0.5).bonus(np.array([0, 1, 3])), [0.0, 0.5 * np.log(2), 0.5 * np.log(4)])
    scoring = Scoring(Freshness(0.0, (1.0,), (0.5, 0.0)), Affinity(0.3))
    assert Scoring.from_dict(scoring.to_dict()) == scoring
    # a checkpoint from before affinity: no affinity, the freshness as it was
    assert Scoring.from_dict({"freshness_weight": 0.2}) == Scoring(Freshness(0.2), Affinity(0.0))
    assert "affinity_weight" not in Scoring(Freshness(0.2)).to_dict() and not Affinity().active


def _toy(weight: float, n_queries: int = 4000):
    """20 authors with 20 posts each, created over 48 hours; every query has engaged 3 authors
    1..6 times, and engages a post with odds exp(5 * similarity + weight * log1p(engagements
    with its author)), whatever its age. Returns (ids, authors, queries, user vectors, corpus)."""
    rng = np.random.default_rng(3)
    now = 1_800_000_000_000
    n = 400
    authors = (np.arange(n) % 20 + 1).astype(np.uint64)
    ids = snowflake.make_ids((now - np.linspace(0.1, 47.9, n) * HOUR_MS).astype(np.int64), np.arange(n))
    corpus = rng.normal(size=(n, 4)).astype(np.float32) / 2
    users = rng.normal(size=(n_queries, 4)).astype(np.float32) / 2
    queries = []
    for u in range(n_queries):
        liked = rng.choice(20, size=3, replace=False) + 1
        history = tuple(HistoryItem(10_000 + k, int(a), (FAV,)) for a in liked for k in range(rng.integers(1, 7)))
        logit = 5 * corpus @ users[u] + weight * np.log1p(author_counts(engaged_authors(history, 64), authors))
        odds = np.exp(logit - logit.max())
        target = rng.choice(n, p=odds / odds.sum())
        queries.append(RetrieveExample(u + 1, now + HOUR_MS, history, int(ids[target]), int(authors[target])))
    return ids, authors, queries, users, corpus


def _users(vectors):
    return lambda part: vectors[[q.user_id - 1 for q in part]]


def test_joint_fit_recovers_the_affinity_weight():
    ids, authors, queries, users, corpus = _toy(1.5)
    seen = Seen(Engagements.of([]))
    tables = bucket_tables(lambda part: _users(users)(part) @ corpus.T, queries, ids, seen, scales=(5.0,),
                           counts=lambda part: count_matrix([q.history for q in part], authors, 64))
    k = len(AGE_EDGES_H) + 1
    theta = fit_cell_logit(tables.log_z[0], tables.target_cell, cell_features(k, True), BIAS_L2)
    assert abs(theta[k] - 1.5) < 0.15, theta
    populated = theta[:k][[1, 5, 10]]  # the age does not matter: flat biases where there are posts
    assert populated.max() - populated.min() < 0.3, theta[:k]
    assert levels(np.array([0, 5, MAX_LEVEL + 7])).tolist() == [0, 5, MAX_LEVEL]


def test_the_fit_keeps_affinity_where_it_lifts_recall_and_finds_none_where_there_is_none():
    seen = Seen(Engagements.of([]))
    fitted = {}
    for weight in (2.0, 0.0):
        ids, authors, queries, users, corpus = _toy(weight, 1500)
        scoring, recall = fit_freshness(_users(users), corpus, ids, seen, queries, weights=(0.0,), scales=(5.0,),
                                        corpus_authors=authors, history_len=64)
        fitted[weight] = scoring
        assert "buckets+affinity scale 5.0" in recall
    assert fitted[2.0].affinity.weight > 0.25   # 2 / scale 5, as served
    assert abs(fitted[0.0].affinity.weight) < 0.03
    without, _ = fit_freshness(_users(users), corpus, ids, seen, queries, weights=(0.0,), scales=(5.0,))
    assert not without.affinity.active  # no corpus authors given: no affinity tried


def test_the_loss_counts_the_same_engagements_as_the_served_re_rank():
    """losses.author_engagements (authors compared by hash, inside the loss) equals
    rerank.count_matrix (ids, at serving and in the evaluation) on the same histories."""
    from phoenix.config import tiny_retriever_config
    from phoenix.features import hash_candidates, make_user_batch
    from phoenix.losses import author_engagements

    config = tiny_retriever_config()
    s = config.history_len
    histories = [[HistoryItem(1, 10, (FAV,)), HistoryItem(2, 10, (FAV,)), HistoryItem(3, 20, (BLOCK,))],
                 [HistoryItem(4, 20, (FAV,)), HistoryItem(5, 30, (FAV, BLOCK))] + [HistoryItem(6, 40, (FAV,))] * s]
    users = make_user_batch(config, [1, 2], histories)
    authors = np.array([10, 20, 30, 40, 50], np.uint64)

    def tower(author_ids):
        post, author = hash_candidates(config.hash, np.arange(1, author_ids.size + 1, dtype=np.uint64),
                                       author_ids.reshape(-1))
        return {"post_hashes": post.reshape(*author_ids.shape, -1), "author_hashes": author.reshape(*author_ids.shape, -1)}
    in_batch, sampled, hard = author_engagements(users, tower(authors[:2]), tower(authors), tower(authors[[[0, 1], [2, 3]]]))
    want = count_matrix(histories, authors, s)
    assert want.tolist() == [[2, 0, 0, 0, 0], [0, 0, 0, s, 0]]  # the last history_len items only
    assert np.asarray(sampled).tolist() == want.tolist()
    assert np.asarray(in_batch).tolist() == want[:, :2].tolist()
    assert np.asarray(hard).tolist() == [[2, 0], [0, s]]


def test_with_no_freshness_the_affinity_alone_is_fitted():
    ids, authors, queries, users, corpus = _toy(2.0, 1500)
    seen = Seen(Engagements.of([]))
    scoring, recall = fit_freshness(_users(users), corpus, ids, seen, queries, weights=(), scales=(5.0,),
                                    corpus_authors=authors, history_len=64)
    assert set(recall) == {"none", "affinity scale 5.0"} and recall["affinity scale 5.0"] > recall["none"]
    assert scoring.affinity.weight > 0.25 and not scoring.freshness.active
