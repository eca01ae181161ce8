"""The v2 retriever's sampled negatives: drawn among the posts that existed at each engagement,
with the log-Q of the pool they were drawn from (phoenix/training/negatives.py)."""
import numpy as np

from foryou import snowflake
from phoenix.training.negatives import sampled_negatives

T0 = 1_800_000_000_000


def test_existing_negatives_never_postdate_the_engagement_and_carry_their_pool_size():
    created = T0 + np.arange(100) * 60_000                       # one post a minute
    ids = snowflake.make_ids(created, np.arange(100))[::-1]      # any order
    authors = np.arange(100, dtype=np.uint64)[::-1] + 1
    times = np.asarray([T0 + 9 * 60_000, T0 + 99 * 60_000, T0 - 1], np.int64)
    rng = np.random.default_rng(0)
    got, got_authors, log_q = sampled_negatives(ids, authors, np.repeat(times, 200), rng, k=2)
    when = snowflake.created_at_ms_array(got).reshape(3, 200, 2)
    assert (when[0] <= times[0]).all() and (when[1] <= times[1]).all()
    assert len(np.unique(when[0])) == 10 and len(np.unique(when[1])) > 90  # uniform over the pool
    by_id = dict(zip(ids.tolist(), authors.tolist()))
    assert [by_id[int(p)] for p in got[:10]] == got_authors[:10].tolist()
    pools = np.repeat([10, 100, 1], 400)  # nothing existed yet: a pool of one (the loss masks its post)
    assert np.allclose(log_q, np.log(2 / pools))
    everywhere, _, log_q_all = sampled_negatives(ids, authors, times, rng, k=2, how="corpus")
    assert np.allclose(log_q_all, np.log(2 / 100)) and len(everywhere) == 6


def test_recent_negatives_come_from_the_window_before_the_engagement_and_mixed_alternates():
    created = T0 + np.arange(48) * 3_600_000                     # one post an hour for two days
    ids = snowflake.make_ids(created, np.arange(48))
    authors = np.arange(48, dtype=np.uint64) + 1
    times = np.repeat(np.asarray([T0 + 40 * 3_600_000, T0 + 3 * 3_600_000], np.int64), 300)
    rng = np.random.default_rng(0)
    got, _, log_q = sampled_negatives(ids, authors, times, rng, k=2, how="recent")
    age_h = (times.repeat(2) - snowflake.created_at_ms_array(got)) / 3.6e6
    assert (age_h >= 0).all() and (age_h <= 12).all()  # posts 28..40 and 0..3
    assert len(np.unique(got[:600])) == 13 and len(np.unique(got[600:])) == 4
    assert np.allclose(log_q, np.log(2 / np.repeat([13, 4], 600)))
    mixed, _, mixed_q = sampled_negatives(ids, authors, times, rng, k=2, how="mixed")
    mixed_age = ((times.repeat(2) - snowflake.created_at_ms_array(mixed)) / 3.6e6).reshape(-1, 2)
    assert (mixed_age[:, 1] <= 12).all() and (mixed_age[:300, 0] > 12).any()  # even slots: all existing
    assert np.allclose(mixed_q.reshape(-1, 2)[:300], np.log(2 / np.asarray([41, 13])))


def test_served_negatives_are_what_the_feed_showed_and_the_user_passed_over():
    from foryou import topics
    from foryou_protos import common_pb2, events_pb2
    from phoenix.training.data import collect
    from phoenix.training.negatives import served_negatives

    t = T0 + 3_600_000
    a, b, c, never = (snowflake.make_id(T0, i) for i in (1, 2, 3, 4))  # never: served, not created
    post = lambda p, author: (topics.POSTS, events_pb2.PostEvent(  # noqa: E731
        created=common_pb2.Post(post_id=p, author_id=author)))
    log = collect([
        post(a, 7), post(b, 8), post(c, 9),
        (topics.SERVED, events_pb2.ServedEvent(user_id=1, post_ids=[a, b, c, never], served_at_ms=t)),
        (topics.SERVED, events_pb2.ServedEvent(user_id=2, post_ids=[a], served_at_ms=t)),
        (topics.ENGAGEMENTS, common_pb2.Engagement(user_id=1, post_id=b, post_author_id=8,
                                                   actions=[common_pb2.FAVORITE], timestamp_ms=t + 5000)),
        (topics.ENGAGEMENTS, common_pb2.Engagement(user_id=1, post_id=c, post_author_id=9,
                                                   actions=[common_pb2.NOT_INTERESTED], timestamp_ms=t + 6000)),
    ])
    posts, authors = served_negatives(log, np.asarray([1, 1, 2, 3], np.uint64),
                                      np.asarray([t + 10_000, t, t + 1, t + 1]), 3, until_ms=t + 20_000)
    # b was engaged (not a negative); c got only negative feedback (still one); nothing before t
    assert posts.tolist() == [[a, c, 0], [0, 0, 0], [a, 0, 0], [0, 0, 0]]
    assert authors.tolist() == [[7, 9, 0], [0, 0, 0], [7, 0, 0], [0, 0, 0]]
    # an engagement after the window's end is not read: b stays a negative
    assert served_negatives(log, np.asarray([1], np.uint64), np.asarray([t + 10_000]), 3, until_ms=t + 1)[0].tolist() \
        == [[a, b, c]]
