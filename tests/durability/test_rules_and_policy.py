"""The event rules (foryou/event_rules.py) record by record, and the supervisor's back-off."""
from __future__ import annotations

import pytest

from foryou import event_rules, topics
from foryou.event_rules import BadRecord, check
from foryou.process import RestartPolicy
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2

NOW = now_ms()
POST_ID = make_id(NOW - 5000, 1)


def _post(**fields) -> events_pb2.PostEvent:
    base = dict(post_id=POST_ID, author_id=7, created_at_ms=NOW - 5000, text="hi")
    event = events_pb2.PostEvent()
    event.created.CopyFrom(common_pb2.Post(**{**base, **fields}))
    return event


def _engagement(**fields) -> common_pb2.Engagement:
    return common_pb2.Engagement(**{**dict(user_id=3, post_id=POST_ID, post_author_id=7, actions=[common_pb2.FAVORITE],
                                          surface=common_pb2.HOME_FOR_YOU, timestamp_ms=NOW - 10), **fields})


def _record(topic, message, key=None):
    return topic, topics.key_for(topic, message) if key is None else key, message.SerializeToString()


def _reason(topic, key, value) -> str:
    with pytest.raises(BadRecord) as info:
        check(topic, key, value, NOW)
    return info.value.reason


@pytest.mark.parametrize("record, reason", [
    ((topics.POSTS, b"1", b""), "empty"),
    ((topics.POSTS, b"1", b"\xff\x00 garbage"), "undecodable"),
    ((topics.POSTS, b"1", b"x" * (event_rules.MAX_RECORD_BYTES + 1)), "too_large"),
    (_record(topics.POSTS, _post(text="x" * (event_rules.MAX_TEXT_CHARS + 1))), "too_long"),
    (_record(topics.POSTS, _post(post_id=make_id(NOW + 3_600_000, 1), created_at_ms=NOW)), "future_id"),
    (_record(topics.POSTS, _post(created_at_ms=NOW + 100 * 365 * 86_400_000)), "future_timestamp"),
    (_record(topics.POSTS, _post(author_id=0)), "bad_id"),
    (_record(topics.POSTS, _post(author_id=2**64 - 1)), "bad_id"),
    (_record(topics.POSTS, _post(post_id=2**64 - 1), key=str(2**64 - 1).encode()), "bad_id"),
    (_record(topics.POSTS, _post(), key=b"12345"), "bad_key"),
    (_record(topics.POSTS, _post(), key=b"not a number"), "bad_key"),
    (_record(topics.USERS, events_pb2.UserEvent(user_id=5, timestamp_ms=NOW + 10**12, follow=6)), "future_timestamp"),
    (_record(topics.USERS, events_pb2.UserEvent(user_id=5, timestamp_ms=NOW, follow=0)), "bad_id"),
    (_record(topics.USERS, events_pb2.UserEvent(user_id=5, timestamp_ms=NOW, follow=2**64 - 1)), "bad_id"),
    (_record(topics.USERS, events_pb2.UserEvent(user_id=5, timestamp_ms=NOW, profile=events_pb2.Profile(
        handle="h" * 1000))), "too_long"),
    (_record(topics.ENGAGEMENTS, _engagement(timestamp_ms=NOW + 10**9)), "future_timestamp"),
    (_record(topics.ENGAGEMENTS, _engagement(actions=[1] * 1000)), "too_many"),
    (_record(topics.SERVED, events_pb2.ServedEvent(user_id=3, request_id="r", post_ids=[POST_ID] * 5000)), "too_many"),
    # an Engagement published on `served` (and the other way round) is another message type
    ((topics.SERVED, b"3", _engagement().SerializeToString()), "wrong_type"),
    ((topics.ENGAGEMENTS, b"3", events_pb2.ServedEvent(user_id=3, request_id="r", post_ids=[POST_ID])
      .SerializeToString()), "wrong_type"),
])
def test_bad_records_are_refused_with_their_reason(record, reason):
    assert _reason(*record) == reason


def test_missing_follow_target_is_refused():
    # a UserEvent that names no event at all
    assert _reason(topics.USERS, b"5", events_pb2.UserEvent(user_id=5, timestamp_ms=NOW).SerializeToString()) \
        == "missing_field"


def test_unknown_enum_values_are_mapped_not_refused():
    e = _engagement(surface=99, actions=[common_pb2.FAVORITE, 77])
    checked = check(*_record(topics.ENGAGEMENTS, e), NOW)
    assert checked.surface == common_pb2.SURFACE_UNSPECIFIED
    assert list(checked.actions) == [common_pb2.FAVORITE, common_pb2.ACTION_UNSPECIFIED]
    labelled = check(*_record(topics.POSTS, _post(labels=[common_pb2.SPAM, 42])), NOW)
    assert list(labelled.created.labels) == [common_pb2.SPAM]


def test_good_records_pass_unchanged():
    for topic, message in [(topics.POSTS, _post()), (topics.ENGAGEMENTS, _engagement()),
                           (topics.USERS, events_pb2.UserEvent(user_id=5, timestamp_ms=NOW, follow=6)),
                           (topics.SERVED, events_pb2.ServedEvent(user_id=3, request_id="r", post_ids=[POST_ID],
                                                                  served_at_ms=NOW))]:
        assert check(*_record(topic, message), NOW) == message


def test_restart_policy_backs_off_and_forgives_a_stable_run():
    policy = RestartPolicy(base_s=1, max_s=8, stable_after_s=60)
    t = 100.0
    delays = []
    for _ in range(5):
        assert not policy.due(t)              # noticed dead: wait the back-off first
        delay = policy._restart_at - t
        assert policy.due(t + delay)
        policy.record_restart(t + delay)
        delays.append(delay)
        t += delay + 1                        # dies again a second later
    assert delays == [1, 2, 4, 8, 8]
    assert policy.restarts == 5
    policy.running(t + 61)                    # up for a minute: the next crash waits base_s again
    assert policy.delay_s() == 1
