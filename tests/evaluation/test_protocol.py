"""Query sampling, the 'everything engaged before' exclusion, leave-last-out, the baselines
and the cold split, on small hand-made logs."""
from __future__ import annotations

import numpy as np
import pytest

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2
from phoenix.evaluation.baselines import item_knn_scorer, ranker_baselines, user_item_bias
from phoenix.evaluation.content_baseline import ContentVectors, ranker_content_scores, retrieval_content_scorer
from phoenix.evaluation.evaluate import Extras, evaluate_ranker, training_window_posts
from phoenix.evaluation.retrieval import Seen, leave_last_out_queries, sample_queries, target_ranks
from phoenix.features import CandidateItem, HistoryItem
from phoenix.training.data import RankExample, RankExamples, RetrieveExample, RetrieveExamples, Split, collect
from phoenix.training.event_log import Engagements

T0 = 1_800_000_000_000
POSTS = [snowflake.make_id(T0 + i, i) for i in range(6)]  # created in order, all before T0 + 100


def eng(user, post, t, actions=(common_pb2.CLICK,)):
    return common_pb2.Engagement(user_id=user, post_id=post, post_author_id=1, actions=list(actions),
                                 timestamp_ms=t)


def q(user, post, t, history=()):
    return RetrieveExample(user, t, tuple(HistoryItem(p, 1, (4,), 1) for p in history), post, 1)


def test_sample_queries_covers_every_user_before_repeating_and_is_seeded():
    test = [q(1, POSTS[0], T0 + i) for i in range(10)] + [q(2, POSTS[1], T0), q(3, POSTS[2], T0)]
    picked = sample_queries(RetrieveExamples.of(test), 4, seed=5)
    assert len(picked) == 4 and {x.user_id for x in picked} == {1, 2, 3}
    assert picked == sample_queries(RetrieveExamples.of(test), 4, seed=5)
    assert sample_queries(RetrieveExamples.of(test), 100) == test


def test_everything_engaged_before_is_excluded_not_only_the_history():
    seen = Seen(Engagements.of([eng(1, POSTS[0], T0 + 100), eng(1, POSTS[1], T0 + 200), eng(1, POSTS[2], T0 + 300)]))
    # scores: the two earlier engagements outscore the target; the history holds only one of them
    scores = np.array([[5.0, 4.0, 3.0, 1.0, 0.0, 0.0]])
    query = q(1, POSTS[2], T0 + 300, history=(POSTS[1],))
    history_only = target_ranks(lambda part: scores, [query], np.array(POSTS, np.uint64))
    everything = target_ranks(lambda part: scores, [query], np.array(POSTS, np.uint64), seen=seen)
    assert history_only.tolist() == [1.0] and everything.tolist() == [0.0]


def test_leave_last_out_takes_each_users_last_engagement_after_the_cutoff():
    engagements = [eng(1, POSTS[0], T0 + 100), eng(1, POSTS[1], T0 + 500), eng(2, POSTS[2], T0 + 200),
                   eng(2, POSTS[3], T0 + 300), eng(3, POSTS[4], T0 + 600),
                   eng(3, POSTS[5], T0 + 700, (common_pb2.NOT_INTERESTED,))]  # negative: not a target
    log = collect([*((topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=p, author_id=1)))
                     for p in POSTS), *((topics.ENGAGEMENTS, e) for e in engagements)])
    out = leave_last_out_queries(log, Seen(log.engagements), T0 + 400, 8)
    assert [(x.user_id, x.post_id) for x in out] == [(1, POSTS[1]), (3, POSTS[4])]  # user 2 ended before the cutoff
    assert [h.post_id for h in out[0].history] == [POSTS[0]] and out[1].history == ()
    assert [x.author_id for x in out] == [1, 1]


def test_item_knn_scores_co_occurrence_cosine():
    # users 1 and 2 both engaged A and B; user 3 engaged A and C
    a, b, c = POSTS[:3]
    train = [q(1, a, T0), q(1, b, T0), q(2, a, T0), q(2, b, T0), q(3, a, T0), q(3, c, T0)]
    seen = Seen(Engagements.of([eng(9, a, T0 + 10)]))
    scores = item_knn_scorer(RetrieveExamples.of(train), np.array([a, b, c], np.uint64), seen)([q(9, b, T0 + 20)])
    # |A|=3, |B|=2, |C|=1; co(A,B)=2, co(A,C)=1: cos 2/sqrt(6), 1/sqrt(3); A itself 0
    assert scores[0] == pytest.approx([0.0, 2 / np.sqrt(6), 1 / np.sqrt(3)])


def _rank_example(user, t, posts, favs, history=()):
    labels = np.zeros((len(posts), 18), np.float32)
    labels[:, 0] = favs
    return RankExample(user, t, tuple(HistoryItem(p, 1, (0,), 1) for p in history),
                       tuple(CandidateItem(p, 1, 1) for p in posts), labels, np.zeros(len(posts), np.float32))


def test_user_item_bias_learns_who_likes_everything_and_what_everyone_likes():
    a, b = POSTS[:2]
    # user 1 favorites everything, user 2 nothing; post a is favorited more than b
    train = [_rank_example(1, T0, [a, b], [1, 1]), _rank_example(2, T0, [a, b], [1, 0]),
             _rank_example(1, T0, [a, b], [1, 1]), _rank_example(2, T0, [a, b], [0, 0])] * 5
    test = [_rank_example(1, T0 + 1, [b], [1]), _rank_example(2, T0 + 1, [a, b], [1, 0])]
    train, test = RankExamples.of(train), RankExamples.of(test)
    probs = user_item_bias(train, test)[:, 0]
    assert probs[0] > probs[1] > probs[2]  # (user 1, b) > (user 2, a) > (user 2, b)
    scores, _ = ranker_baselines(train, test)["user_item_bias"]
    assert scores[:, 0] == pytest.approx(probs)


def test_content_baseline_is_the_cosine_with_the_history_mean():
    a, b, c = POSTS[:3]
    vectors = {"alpha": [1.0, 0.0], "beta": [0.0, 1.0], "mix": [1.0, 1.0]}
    content = ContentVectors({a: "alpha", b: "beta", c: "mix"}, lambda texts: np.array([vectors[t] for t in texts]))
    cos = ranker_content_scores(content, RankExamples.of([_rank_example(1, T0, [a, b, c], [0, 0, 0], history=(a,))]))
    assert cos == pytest.approx([1.0, 0.0, np.sqrt(0.5)])
    seen = Seen(Engagements.of([eng(1, a, T0 + 10), eng(1, b, T0 + 20)]))
    retrieved = retrieval_content_scorer(content, np.array([a, b, c], np.uint64), seen)([q(1, c, T0 + 30)])
    assert retrieved[0] == pytest.approx([np.sqrt(0.5), np.sqrt(0.5), 1.0])


def test_ranker_segments_split_cold_posts_and_the_oracle_gives_the_lift_share():
    from foryou.world import Oracle

    warm, cold = POSTS[0], POSTS[5]
    log = collect([*((topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=p, author_id=1)))
                     for p in POSTS),
                   (topics.SERVED, events_pb2.ServedEvent(user_id=1, post_ids=[warm], served_at_ms=T0 + 10)),
                   (topics.SERVED, events_pb2.ServedEvent(user_id=1, post_ids=[cold], served_at_ms=T0 + 900)),
                   (topics.ENGAGEMENTS, eng(1, warm, T0 + 11)), (topics.ENGAGEMENTS, eng(1, cold, T0 + 901))])
    train = RankExamples.of([_rank_example(1, T0 + 10, [warm], [1])])
    test = RankExamples.of([_rank_example(u, T0 + 1000, [warm, cold], f)
                            for u, f in ((2, [1, 0]), (3, [0, 1]), (4, [1, 0]), (5, [0, 0]))])
    split = Split(T0 + 500, train, test)
    assert training_window_posts(log, split.cutoff_ms).tolist() == [warm]  # not what came after the cutoff
    model = np.zeros((8, 18))
    model[:, 0] = [0.9, 0.2, 0.3, 0.6, 0.8, 0.4, 0.5, 0.1]
    oracle = Oracle(np.array([2, 2, 3, 3, 4, 4, 5, 5], np.uint64), np.array([warm, cold] * 4, np.uint64),
                    np.tile(np.array([[0.99], [0.01], [0.02], [0.98], [0.97], [0.03], [0.5], [0.4]]), (1, 18)))
    result = evaluate_ranker(model, log, split, Extras(oracle=oracle))
    seg = result["segments"]
    assert (seg["all"]["candidates"], seg["warm"]["candidates"], seg["cold"]["candidates"]) == (8, 4, 4)
    fav = {s: seg[s]["methods"]["model"]["favorite"] for s in seg}
    # warm: positives 0.9, 0.8 vs negatives 0.3, 0.5 -> 1.0; cold: positive 0.6 vs 0.2, 0.4, 0.1 -> 1.0
    assert fav["warm"]["auc"] == 1.0 and fav["cold"]["auc"] == 1.0
    # all: positives 0.9, 0.6, 0.8 vs 0.2, 0.3, 0.4, 0.5, 0.1: every pair right
    assert fav["all"]["auc"] == 1.0
    oracle_auc = seg["all"]["methods"]["oracle"]["favorite"]["auc"]
    assert oracle_auc == 1.0 and fav["all"]["lift_share"] == pytest.approx(1.0)
    assert seg["all"]["methods"]["random"]["favorite"]["lift_share"] == pytest.approx(
        (seg["all"]["methods"]["random"]["favorite"]["auc"] - 0.5) / 0.5)
    assert result["methods"] is seg["all"]["methods"]


def test_wordllama_loads_from_its_wheel_with_the_network_unreachable(monkeypatch):
    import socket

    from phoenix.evaluation.content_baseline import wordllama_embed

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    vectors = wordllama_embed()(["jazz saxophone quartet", "saxophone bebop swing", "compiler refactor"])
    assert vectors.shape == (3, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]  # related texts are closer
