"""The hydrators that need no dependency, and the deadline arithmetic of the clients."""
from __future__ import annotations

import time

import numpy as np
import pytest

from foryou_protos import common_pb2, thunder_pb2
from tests.home_mixer.hm_helpers import VIEWER, batch, cand, query
from home_mixer.candidates import CORE_FOUND, label_mask, label_names
from home_mixer.clients import DeadlineExhausted, call_timeout
from home_mixer.hydrators.in_network import InNetworkHydrator
from home_mixer.hydrators.subscription import SubscriptionHydrator
from home_mixer.query import UserFeatures
from home_mixer.query_hydrators.user_features import features_from_context
from home_mixer.wire import columns_from_wire, wire_from_posts


async def test_in_network_hydrator_marks_followed_authors_and_keeps_source_flag_without_features():
    candidates = batch(cand(1, author=5, in_network=False), cand(2, author=6, in_network=True))
    hydrated = await InNetworkHydrator().hydrate(query(UserFeatures(following=frozenset({5}))), candidates)
    assert hydrated["in_network"].tolist() == [True, False]
    assert candidates["in_network"].tolist() == [False, True]  # hydrate returns columns; the batch is unchanged
    assert await InNetworkHydrator().hydrate(query(None), candidates) == {}  # unknown: the source's flag stays


async def test_subscription_hydrator_marks_subscribed_authors():
    candidates = batch(cand(1, author=5), cand(2, author=6))
    hydrated = await SubscriptionHydrator().hydrate(query(UserFeatures(subscriptions=frozenset({6}))), candidates)
    assert hydrated["viewer_subscribes"].tolist() == [False, True]
    assert await SubscriptionHydrator().hydrate(query(None), candidates) == {}


def test_call_timeout_is_cut_to_the_request_deadline():
    assert call_timeout(query(), 2.0) == 2.0
    assert call_timeout(query(deadline=time.monotonic() + 0.5), 2.0) <= 0.5
    with pytest.raises(DeadlineExhausted):
        call_timeout(query(deadline=time.monotonic() - 0.1), 2.0)


def test_rank_request_carries_the_id_columns_packed():
    from home_mixer.clients import rank_request
    request = rank_request(query(), [], np.array([2**62 + 5, 7]), np.array([3, 4]))
    assert list(request.post_ids) == [2**62 + 5, 7] and list(request.author_ids) == [3, 4]
    assert request.user_id == VIEWER and request.request_id == "req-test" and request.surface == common_pb2.HOME_FOR_YOU


def test_post_columns_round_trip_with_authors_and_labels():
    posts = [common_pb2.Post(post_id=11, author_id=5, text="hi", labels=[common_pb2.SPAM, common_pb2.MISINFORMATION],
                             repost_of_post_id=9, repost_of_user_id=6, video_duration_ms=12_000),
             common_pb2.Post(post_id=12, author_id=6, subscriber_only=True)]
    authors = {5: thunder_pb2.Author(user_id=5, handle="five", verified=True, follower_count=3),
               6: thunder_pb2.Author(user_id=6, handle="six")}
    wire = wire_from_posts(posts, authors, impressions={11: 999})
    columns = columns_from_wire(thunder_pb2.PostColumns.FromString(wire.SerializeToString()))
    assert columns["impression_count"].tolist() == [999, 0]
    assert columns["post_id"].tolist() == [11, 12] and columns["core_data"].tolist() == [CORE_FOUND] * 2
    assert columns["label_mask"].tolist() == [label_mask([common_pb2.SPAM, common_pb2.MISINFORMATION]), 0]
    assert label_names(int(columns["label_mask"][0])) == ["spam", "misinformation"]
    assert columns["author_handle"].tolist() == ["five", "six"] and columns["reposted_author_handle"].tolist() == ["six", ""]
    assert columns["author_verified"].tolist() == [True, False] and columns["author_follower_count"].tolist() == [3, 0]
    assert columns["subscriber_only"].tolist() == [False, True] and columns["video_duration_ms"].tolist() == [12_000, 0]


def test_user_features_carry_mutual_follows_and_served_times():
    context = thunder_pb2.UserContext(user_id=VIEWER, following_user_ids=[5, 6], mutual_follow_user_ids=[6],
                                      served_post_ids=[21, 20], served_at_ms=[2_000, 1_000])
    features = features_from_context(context)
    assert features.mutual_follows == {6} and features.served_at_ms == (2_000, 1_000)
    del context.served_at_ms[:]
    with pytest.raises(ValueError, match="served_at_ms"):   # ids without their times: refused
        features_from_context(context)


async def test_phoenix_client_decodes_float16_content_rows_across_parallel_batches():
    """Rank replies carry content as float16 bytes (phoenix.proto); the client joins the
    batches' predictions and content rows back in candidate order, exactly as Phoenix sent them."""
    from foryou_protos import phoenix_pb2
    from home_mixer.clients import PhoenixClient
    from home_mixer.params import ACTION_NAMES
    from phoenix.runtime import Ranked
    from phoenix.server import rank_response

    rng = np.random.default_rng(0)
    n, dim, outputs = 5, 8, len(ACTION_NAMES)
    predictions = rng.random((n, outputs)).astype(np.float32)
    content = rng.normal(size=(n, dim)).astype(np.float16).astype(np.float32)  # what the store holds

    class Stub:
        async def Rank(self, request, timeout):
            rows = [int(p) - 1 for p in request.post_ids]  # post ids 1..n
            reply = rank_response(Ranked(predictions[rows], content[rows]), "ck")
            return phoenix_pb2.RankResponse.FromString(reply.SerializeToString())

    client = PhoenixClient("127.0.0.1:1", timeout_s=1.0)
    client.stub = Stub()  # type: ignore[assignment]
    client._info = phoenix_pb2.ModelInfoResponse(max_candidates=2, max_history=4)
    try:
        got, vectors = await client.rank(query(), np.arange(1, n + 1, dtype=np.uint64), np.ones(n, np.uint64))
    finally:
        await client.close()
    np.testing.assert_array_equal(got, predictions)
    assert vectors is not None and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors, content)
