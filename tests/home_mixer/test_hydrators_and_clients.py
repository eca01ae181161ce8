"""The hydrators that need no dependency, and the deadline arithmetic of the clients."""
from __future__ import annotations

import time

import pytest

from hm_helpers import batch, cand, query
from home_mixer.clients import DeadlineExhausted, call_timeout
from home_mixer.hydrators.in_network import InNetworkHydrator
from home_mixer.hydrators.subscription import SubscriptionHydrator
from home_mixer.query import UserFeatures


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
