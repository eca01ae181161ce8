"""Parameters, request validation, the bloom filter scheme, and the history merge."""
from __future__ import annotations

import hashlib

import pytest

from foryou_protos import common_pb2, home_mixer_pb2
from home_mixer.bloom import ImpressionBloomFilter
from home_mixer.params import ACTION_NAMES, DEFAULT_WEIGHTS, ParamError, Params, parse_params
from home_mixer.query_hydrators.user_action_sequence import merge_engagements
from home_mixer.service import InvalidRequest, RequestValidator

COMPONENTS = frozenset({"AgeFilter", "PhoenixSource"})


def test_defaults_are_the_documented_ones():
    p = Params()
    assert (p.result_size, p.top_k, p.thunder_max_results, p.phoenix_max_results) == (35, 50, 1200, 1000)
    assert p.max_age_ms == 2 * 24 * 3600 * 1000
    assert (p.score_offset, p.diversity_decay, p.diversity_floor, p.oon_factor) == (0.001, 0.5, 0.25, 0.75)
    assert p.vqv_min_duration_ms == 10_000
    assert ACTION_NAMES[0] == "favorite" and ACTION_NAMES[17] == "report" and ACTION_NAMES[-1] == "dwell_time"
    assert DEFAULT_WEIGHTS["report"] == -234.0


def test_overrides_apply_and_leave_defaults_untouched():
    p = parse_params({"result_size": 10, "weight.report": -1.0, "diversity_decay": 0.9})
    assert (p.result_size, p.weights["report"], p.diversity_decay) == (10, -1.0, 0.9)
    assert Params().weights["report"] == -234.0


@pytest.mark.parametrize("overrides, named", [
    ({"no_such_thing": 1}, "no_such_thing"),
    ({"weight.teleport": 1}, "weight.teleport"),
    ({"result_size": -1}, "result_size"),
    ({"result_size": 100_000}, "result_size"),
    ({"result_size": 2.5}, "result_size"),
    ({"diversity_floor": 1.5}, "diversity_floor"),
    ({"oon_factor": float("nan")}, "oon_factor"),
])
def test_bad_overrides_are_rejected_by_name(overrides, named):
    with pytest.raises(ParamError, match=named):
        parse_params(overrides)


def test_phoenix_action_names_agree():
    actions = pytest.importorskip("phoenix.actions")
    # Predictions are mapped by position (index = Action value - 1); Phoenix abbreviates one name.
    aliases = {"vqv": "video_quality_view"}
    assert tuple(aliases.get(n, n) for n in actions.ACTION_NAMES) == ACTION_NAMES


def request(**fields) -> home_mixer_pb2.ScoredPostsQuery:
    return home_mixer_pb2.ScoredPostsQuery(**{"viewer_id": 5, **fields})


def test_validator_builds_the_query():
    bloom = ImpressionBloomFilter.build([1, 2])
    q = RequestValidator(COMPONENTS).query_from(
        request(seen_ids=[1], served_ids=[2], is_bottom_request=True, params={"top_k": 7},
                disabled_components=["AgeFilter"], bloom_filter_entries=[bloom.to_proto()]), None)
    assert q.viewer_id == 5 and q.request_id  # generated
    assert q.seen_ids == {1} and q.served_ids == {2} and q.is_bottom_request
    assert q.params.top_k == 7 and q.disabled_components == {"AgeFilter"}
    assert q.bloom_filters[0].may_contain(2)


@pytest.mark.parametrize("fields, named", [
    ({"viewer_id": 0}, "viewer_id"),
    ({"params": {"bogus": 1.0}}, "bogus"),
    ({"params": {"result_size": -3}}, "result_size"),
    ({"disabled_components": ["NoSuchFilter"]}, "NoSuchFilter"),
    ({"bloom_filter_entries": [home_mixer_pb2.ImpressionBloomFilter(bits=b"\x00", num_bits=64, num_hashes=2)]},
     "bloom_filter_entries"),
])
def test_validator_rejects_bad_requests_naming_the_field(fields, named):
    with pytest.raises(InvalidRequest, match=named):
        RequestValidator(COMPONENTS).query_from(request(**fields), None)


def test_bloom_filter_follows_the_proto_scheme():
    # Recompute the bits of one id by the proto's description, independently of the module.
    post_id, num_bits, num_hashes = 1234567890123, 1000, 3
    digest = hashlib.blake2b(post_id.to_bytes(8, "little"), digest_size=16).digest()
    h1, h2 = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")
    bits = bytearray(125)
    for j in range(num_hashes):
        i = (h1 + j * h2) % num_bits
        bits[i // 8] |= 1 << (i % 8)
    assert ImpressionBloomFilter.build([post_id], num_bits, num_hashes).bits == bytes(bits)
    bloom = ImpressionBloomFilter(bytes(bits), num_bits, num_hashes)
    assert bloom.may_contain(post_id)
    assert sum(bloom.may_contain(i) for i in range(1, 1001)) < 10  # few false positives at this load


def engagement(post, actions, ts, author=9, surface=common_pb2.HOME_FOR_YOU):
    return common_pb2.Engagement(user_id=5, post_id=post, post_author_id=author, actions=actions,
                                 surface=surface, timestamp_ms=ts)


def test_history_merges_same_post_actions_within_the_window():
    fav, reply, click = common_pb2.FAVORITE, common_pb2.REPLY, common_pb2.CLICK
    history = merge_engagements([
        engagement(1, [fav], 1_000),
        engagement(2, [click], 2_000),
        engagement(1, [reply], 61_000),        # within 5 min of the first: merged
        engagement(3, [], 70_000),             # no action: dropped
        engagement(4, [common_pb2.ACTION_UNSPECIFIED], 71_000),  # no usable action: dropped
        engagement(1, [click], 1_000_000),     # long after: a new entry
    ], window_ms=300_000, max_entries=32)
    assert [(e.post_id, sorted(e.actions)) for e in history] == [(1, [fav, reply]), (2, [click]), (1, [click])]
    assert history[0].author_id == 9 and history[0].surface == common_pb2.HOME_FOR_YOU


def test_history_keeps_the_newest_entries():
    history = merge_engagements([engagement(i, [common_pb2.FAVORITE], i * 1000) for i in range(1, 11)],
                                window_ms=0, max_entries=3)
    assert [e.post_id for e in history] == [8, 9, 10]
    assert merge_engagements([engagement(1, [common_pb2.FAVORITE], 0)], 0, max_entries=0) == ()


def test_safety_filters_cannot_be_disabled_per_request():
    validator = RequestValidator(COMPONENTS | {"MutedKeywordFilter"}, required_components=frozenset({"MutedKeywordFilter"}))
    with pytest.raises(InvalidRequest, match="'MutedKeywordFilter' is a safety filter"):
        validator.query_from(request(disabled_components=["AgeFilter", "MutedKeywordFilter"]), None)
    assert validator.query_from(request(disabled_components=["AgeFilter"]), None).disabled_components == {"AgeFilter"}

