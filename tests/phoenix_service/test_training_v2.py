"""Phoenix v2 training: impression labels come from the first engagement after the impression;
a v2 retriever's retrieval follows new behaviour (engaging with a topic raises its share)."""
from __future__ import annotations


import numpy as np
import pytest

from foryou_protos import common_pb2, events_pb2
from foryou import snowflake, topics
from foryou.world import WorldConfig, generate_world
from phoenix.server_models import preset_configs
from phoenix.features import HistoryItem
from phoenix.training import retriever, retriever_scoring
from phoenix.training.data import collect, history_of, rank_examples

pytestmark = pytest.mark.slow  # trains or starts stacks: scheduled first (tests/conftest.py)

NOW_MS = 1_800_000_000_000


def _engagement(user, post, author, t, *actions):
    return common_pb2.Engagement(user_id=user, post_id=post, post_author_id=author, actions=list(actions),
                                 timestamp_ms=t)


def test_labels_come_from_the_first_engagement_after_the_impression():
    t0 = NOW_MS - 3_600_000
    post_a, post_b = snowflake.make_id(t0 - 60_000, 1), snowflake.make_id(t0 - 60_000, 2)
    post = lambda p: (topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=p, author_id=9)))  # noqa: E731
    log = collect([
        post(post_a), post(post_b),
        # liked a before the impression: history, not a label; replied to a after it: the label
        (topics.ENGAGEMENTS, _engagement(1, post_a, 9, t0 - 1000, common_pb2.FAVORITE)),
        (topics.SERVED, events_pb2.ServedEvent(user_id=1, post_ids=[post_a, post_b], served_at_ms=t0)),
        (topics.ENGAGEMENTS, _engagement(1, post_a, 9, t0 + 5000, common_pb2.REPLY)),
        (topics.ENGAGEMENTS, _engagement(1, post_a, 9, t0 + 9000, common_pb2.REPOST)),
        # b engaged far outside the label window: negative
        (topics.ENGAGEMENTS, _engagement(1, post_b, 9, t0 + 3 * 86_400_000, common_pb2.FAVORITE)),
    ])
    [example] = rank_examples(log, history_len=8, chunk=8, label_window_ms=86_400_000)
    fav, reply, repost = (common_pb2.FAVORITE - 1, common_pb2.REPLY - 1, common_pb2.REPOST - 1)
    assert example.labels[0, reply] == 1 and example.labels[0, fav] == 0 and example.labels[0, repost] == 0
    assert not example.labels[1].any()
    assert [h.post_id for h in example.history] == [post_a] and example.history[0].time_ms == t0 - 1000


@pytest.fixture(scope="module")
def trained_v2_retriever():
    world = generate_world(WorldConfig(num_users=120, days=1.0, impressions_per_user=80, seed=4, now_ms=NOW_MS))
    log = collect(world.events())
    config = preset_configs("small")[1]
    params, metrics = retriever.train(log, config, steps=80, progress=lambda line: None, freshness_weights=())
    return world, log, config, params, metrics


def test_v2_retriever_beats_most_recent_and_follows_new_behaviour(trained_v2_retriever):
    world, log, config, params, metrics = trained_v2_retriever
    methods = metrics["eval"]["methods"]
    assert methods["model"]["recall@50"] > methods["most_popular"]["recall@50"] + 0.1, methods
    runtime = retriever_scoring.runtime_for(params, config, log, metrics["codebook"])
    ids, authors = retriever_scoring.corpus_of(log)
    corpus = runtime.candidate_embeddings(ids, authors)
    topic_of = np.asarray([world.post_topic[int(p)] for p in ids])
    history_rows, timeline = history_of(log)
    rises = []
    for user in world.users[:20]:
        history = list(history_rows.items(*(int(x[0]) for x in timeline.before([user.user_id], [NOW_MS + 1],
                                                                                 config.history_len))))
        topic = int(np.argsort(user.taste)[len(user.taste) // 2])  # a middling topic for this user
        on_topic = [int(p) for p in ids[topic_of == topic]][:15]
        if len(on_topic) < 5:
            continue
        share = lambda h: float(np.mean(topic_of[np.argsort(-(corpus @ runtime.user_embeddings([user.user_id], [h])[0]))[:50]] == topic))  # noqa: E731
        engaged = history + [HistoryItem(p, int(log.posts.authors_of([p])[0]), (common_pb2.FAVORITE - 1, common_pb2.REPLY - 1), 0,
                                         NOW_MS, 20_000) for p in on_topic]
        rises.append(share(engaged) - share(history))
    rises = np.asarray(rises)
    assert len(rises) >= 10
    # measured: +0.03 on average here, many users unmoved (+0.07 on the 500-user demo world); an
    # ids-only retriever did not move at all (0.04 before and after)
    assert rises.mean() > 0.01 and (rises > 0).sum() > (rises < 0).sum(), rises
