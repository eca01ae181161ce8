"""The columnar example builders (phoenix/training/data.py) give exactly what the per-message
builders gave (tests/phoenix_service/reference_examples.py), examples and model arrays, on a
small synthetic world plus hand-made edge cases: equal timestamps, an engagement at the
impression time and at the end of the label window, posts never created, negative feedback."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from foryou import snowflake, topics
from foryou.world import WorldConfig, generate_world
from foryou_protos import common_pb2, events_pb2
from phoenix.config import InputsConfig, tiny_ranker_config, tiny_retriever_config
from phoenix.features import make_rank_batch, make_user_batch
from phoenix.training import ranker, retriever
from phoenix.training.data import collect, hard_negatives, rank_examples, retrieve_examples, split_by_time
from phoenix.training.loop import validation_split
from tests.phoenix_service import reference_examples as reference

NOW_MS = 1_800_000_000_000
WINDOW_MS = 3_600_000
INPUTS = InputsConfig(age_buckets=48, history_dwell=True)


def _edge_events(world) -> list:
    user, other = world.users[0].user_id, world.users[1].user_id
    t = NOW_MS - 1_000_000
    known = [snowflake.make_id(t - 5_000_000, 900 + i) for i in range(3)]
    ghost = snowflake.make_id(t - 5_000_000, 999)  # never created
    fav, reply, neg = common_pb2.FAVORITE, common_pb2.REPLY, common_pb2.NOT_INTERESTED

    def eng(u, p, at, *actions, dwell=0):
        return (topics.ENGAGEMENTS, common_pb2.Engagement(user_id=u, post_id=p, post_author_id=7, actions=list(actions),
                                                          timestamp_ms=at, dwell_time_ms=dwell, surface=2))
    return [
        *[(topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=p, author_id=7, text="x")))
          for p in known],
        (topics.SERVED, events_pb2.ServedEvent(user_id=user, post_ids=[known[0], ghost, known[1], known[2]],
                                               served_at_ms=t)),
        (topics.SERVED, events_pb2.ServedEvent(user_id=other, post_ids=known, served_at_ms=t)),  # same time
        eng(user, known[0], t, fav, dwell=4000),            # at the impression: a label, not history
        eng(user, known[0], t, reply),                      # same time: the first one read wins
        eng(user, known[1], t + WINDOW_MS, fav),            # at the window's end: outside
        eng(user, known[2], t - 1, neg),                    # negative feedback just before
        eng(user, ghost, t - 2, fav),                       # a post never created: history only
        eng(other, known[2], t + 10, neg, fav),             # both: a label and a hard negative
    ]


@pytest.fixture(scope="module")
def logs():
    world = generate_world(WorldConfig(num_users=40, days=1.0, impressions_per_user=30, seed=5, now_ms=NOW_MS))
    events = list(world.events()) + _edge_events(world)
    return collect(events), reference.Log(events)


def _same_arrays(a, b) -> None:
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        assert (x is None) == (y is None), field.name
        if x is not None:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=field.name)


def test_rank_examples_and_arrays_match_the_per_message_builder(logs):
    log, old = logs
    config = tiny_ranker_config(history_len=6, num_candidates=3, inputs=INPUTS)
    new = rank_examples(log, config.history_len, config.num_candidates, WINDOW_MS)
    expected = reference.rank_examples(old, config.history_len, config.num_candidates, WINDOW_MS)
    assert len(new) == len(expected) > 100
    for got, want in zip(new, expected):
        assert (got.user_id, got.time_ms, got.history, got.candidates) == \
            (want.user_id, want.time_ms, want.history, want.candidates)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_array_equal(got.dwell, want.dwell)
    assert sum(ex.labels.sum() for ex in expected) > 50 and any(ex.history for ex in expected)
    data = ranker.example_arrays(config, new)
    batch = make_rank_batch(config, [ex.user_id for ex in expected], [ex.history for ex in expected],
                            [ex.candidates for ex in expected], num_candidates=3,
                            now_ms=[ex.time_ms for ex in expected])
    _same_arrays(data.batch, batch)
    for row, ex in enumerate(expected):
        np.testing.assert_array_equal(data.labels[row, :len(ex.candidates)], ex.labels)
        assert not data.labels[row, len(ex.candidates):].any()


def test_retrieve_examples_arrays_and_hard_negatives_match(logs):
    log, old = logs
    config = tiny_retriever_config(history_len=6, inputs=INPUTS)
    new = retrieve_examples(log, config.history_len)
    expected = reference.retrieve_examples(old, config.history_len)
    assert list(new) == expected and len(expected) > 100
    _same_arrays(retriever.example_arrays(config, new).users,
                 make_user_batch(config, [ex.user_id for ex in expected], [ex.history for ex in expected]))
    ids, authors = hard_negatives(log, new.user, new.time, 2)
    want = [reference.hard_negatives(old, ex.user_id, ex.time_ms, 2) for ex in expected]
    assert sum(map(len, want)) > 0
    assert [[(int(p), int(a)) for p, a in zip(r, s) if p] for r, s in zip(ids, authors)] == [list(w) for w in want]
    # the time split and the validation slice pick the same examples as on the lists
    split = split_by_time(new, 0.25)
    assert list(split.train) == [ex for ex in expected if ex.time_ms < split.cutoff_ms]
    fit_part, validation = validation_split(split.train, 0.2)
    ordered = sorted(split.train, key=lambda ex: ex.time_ms)
    assert list(validation) == ordered[-len(validation):] and len(fit_part) + len(validation) == len(split.train)


def test_sequence_windows_match(logs):
    log, old = logs
    config = tiny_retriever_config(history_len=4, inputs=INPUTS, user_pooling="last")
    end_ms, from_ms = NOW_MS - 3 * 3_600_000, NOW_MS - 10 * 3_600_000
    positives = {common_pb2.FAVORITE, common_pb2.REPLY}
    arrays, n, _ = retriever.sequence_arrays(config, log, None, end_ms, from_ms, 0, positives=positives)
    want = reference.sequence_windows(old, end_ms, config.history_len, positives, from_ms)
    assert n == len(want) > 20
    np.testing.assert_array_equal(arrays["valid"], np.asarray([w[4] for w in want]))
    np.testing.assert_array_equal(arrays["user_key"], [w[2] for w in want])
    _same_arrays(arrays["users"], make_user_batch(config, [w[0] for w in want], [w[1] for w in want]))
    posts = np.asarray([w[3] for w in want], np.uint64)
    targets = retriever._tower_inputs(config, None, posts, np.zeros_like(posts))
    np.testing.assert_array_equal(arrays["targets"]["post_hashes"], targets["post_hashes"])
