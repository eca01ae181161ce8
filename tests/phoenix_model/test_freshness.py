"""The retriever's freshness re-rank: the per-age-bucket bias (phoenix.rerank.Freshness) and its
maximum-likelihood fit (phoenix/training/freshness.py) recover a known shape on toy data."""
import numpy as np

from foryou import snowflake
from phoenix.evaluation.retrieval import Seen
from phoenix.training.data import RetrieveExample
from phoenix.training.event_log import Engagements
from phoenix.rerank import Freshness, Scoring, age_bucket
from phoenix.training.affinity import cell_features, fit_cell_logit
from phoenix.training.freshness import AGE_EDGES_H, BIAS_L2, bucket_tables, fit_bucket_bias, fit_freshness

HOUR_MS = 3_600_000


def test_bucket_bonus_and_round_trip():
    f = Freshness(0.0, (1.0, 12.0), (0.5, 0.0, -2.0))
    assert f.active and not Freshness().active and Freshness(0.0, (1.0,), (0.0, 0.0)).active is False
    now = 100 * HOUR_MS
    created = np.array([now - 0.5 * HOUR_MS, now - HOUR_MS, now - 11.9 * HOUR_MS, now - 12 * HOUR_MS, now + HOUR_MS])
    # an edge belongs to the older bucket; a post from the future is brand new
    assert f.bonus(created, now).tolist() == [0.5, 0.0, 0.0, -2.0, 0.5]
    assert age_bucket(np.array([0.0, 1.0, 50.0]), (1.0, 12.0)).tolist() == [0, 1, 2]
    assert Freshness.from_dict(f.to_dict()) == f
    assert Freshness.from_dict({"freshness_weight": 0.2}) == Freshness(0.2)  # checkpoints from before buckets
    both = Freshness(0.5, (1.0,), (1.0, 0.0))
    assert np.allclose(both.bonus(np.array([now - 3 * HOUR_MS]), now), -0.5 * np.log1p(3.0))


def test_bucket_bias_recovers_known_log_odds():
    rng = np.random.default_rng(0)
    true = np.array([1.0, 0.0, -1.0, -3.0])
    counts = np.array([5.0, 20.0, 50.0, 100.0])  # posts per bucket: the fit must divide by them
    p = counts * np.exp(true)
    targets = rng.choice(4, size=20_000, p=p / p.sum())
    log_z = np.tile(np.log(counts), (len(targets), 1))
    bias = fit_bucket_bias(log_z, targets, l2=0.0)
    assert np.allclose(bias - bias[1], true - true[1], atol=0.1), bias
    empty = np.concatenate([log_z, np.full((len(targets), 1), -np.inf)], axis=1)  # a bucket with no posts
    assert fit_bucket_bias(empty, targets)[-1] == 0.0


def _toy(now: int, n_posts: int, window_h: tuple[float, float], n_queries: int = 3000):
    """Posts created evenly over 48 hours; every query engages a post aged within `window_h`
    (a feed that shows nothing older), similarity the same for every post."""
    rng = np.random.default_rng(1)
    ages_h = np.linspace(0.1, 47.9, n_posts)
    ids = snowflake.make_ids((now - ages_h * HOUR_MS).astype(np.int64), np.arange(n_posts))
    shown = np.flatnonzero((ages_h >= window_h[0]) & (ages_h < window_h[1]))
    queries = [RetrieveExample(int(u), now, (), int(ids[rng.choice(shown)]), 1) for u in range(1, n_queries + 1)]
    return ids, queries


def _constant_users(corpus):
    return lambda part: np.tile(corpus[:1], (len(part), 1))


def test_bucket_fit_recovers_a_cliff():
    now = 1_800_000_000_000
    ids, queries = _toy(now, 240, (0.0, 12.0))
    seen = Seen(Engagements.of([]))
    corpus = np.ones((len(ids), 2), np.float32) / np.sqrt(2)
    users = _constant_users(corpus)
    tables = bucket_tables(lambda part: users(part) @ corpus.T, queries, ids, seen, scales=(1.0,))
    bias = fit_cell_logit(tables.log_z[0], tables.target_cell, cell_features(len(AGE_EDGES_H) + 1, False), BIAS_L2)
    cliff = AGE_EDGES_H.index(12.0) + 1  # buckets [0, cliff) hold the posts younger than 12 hours
    inside, outside = bias[:cliff], bias[cliff:AGE_EDGES_H.index(48.0) + 1]
    assert inside.max() - inside.min() < 0.5, inside
    assert inside.min() - outside.max() > 3.0, (inside, outside)


def test_fit_keeps_the_buckets_where_one_log_weight_cannot_take_the_shape():
    now = 1_800_000_000_000
    ids, queries = _toy(now, 1000, (6.0, 12.0))  # the newest 6 hours are never engaged
    seen = Seen(Engagements.of([]))
    corpus = np.ones((len(ids), 2), np.float32) / np.sqrt(2)
    users = _constant_users(corpus)
    scoring, recall = fit_freshness(users, corpus, ids, seen, queries, weights=(0.0, 0.4))
    assert scoring.freshness.bias and not scoring.freshness.weight and not scoring.affinity.active
    assert recall["weight 0.4"] < 0.05 and max(recall.values()) > 0.5, recall
    assert fit_freshness(users, corpus, ids, seen, queries, weights=())[0] == Scoring()  # none asked for
