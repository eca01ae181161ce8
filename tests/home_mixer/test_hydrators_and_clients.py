"""The hydrator that needs no dependency, and the deadline arithmetic of the clients."""
from __future__ import annotations

import time

import pytest

from tests.home_mixer.hm_helpers import cand, query
from home_mixer.clients import DeadlineExhausted, call_timeout
from home_mixer.hydrators.in_network import InNetworkHydrator
from home_mixer.query import UserFeatures


async def test_in_network_hydrator_marks_followed_authors_and_keeps_source_flag_without_features():
    followed, stranger = cand(1, author=5, in_network=False), cand(2, author=6, in_network=True)
    hydrated = await InNetworkHydrator().hydrate(query(UserFeatures(following=frozenset({5}))), [followed, stranger])
    assert [h.in_network for h in hydrated] == [True, False]
    assert followed.in_network is False  # hydrate returns records; only `update` changes candidates
    unknown = await InNetworkHydrator().hydrate(query(None), [followed, stranger])
    assert [h.in_network for h in unknown] == [False, True]


def test_call_timeout_is_cut_to_the_request_deadline():
    assert call_timeout(query(), 2.0) == 2.0
    assert call_timeout(query(deadline=time.monotonic() + 0.5), 2.0) <= 0.5
    with pytest.raises(DeadlineExhausted):
        call_timeout(query(deadline=time.monotonic() - 0.1), 2.0)
