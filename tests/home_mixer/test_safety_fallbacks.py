"""When Thunder does not answer (nothing listens on its port), the hydrators fall back to the
safety cache where it has a copy, and leave the facts unknown where it has none."""
from __future__ import annotations

import pytest

from foryou.broker import free_port
from foryou_protos import common_pb2
from tests.home_mixer.hm_helpers import VIEWER, cand, query
from home_mixer.clients import ThunderClient
from home_mixer.hydrators.core_data import CoreDataHydrator
from home_mixer.hydrators.visibility import VisibilityHydrator
from home_mixer.query import UserFeatures
from home_mixer.query_hydrators.user_features import UserFeaturesHydrator


@pytest.fixture
async def dead_thunder():
    client = ThunderClient(f"127.0.0.1:{free_port()}", timeout_s=2.0)
    yield client
    await client.close()


async def test_user_features_come_from_the_cache_or_stay_unknown(dead_thunder):
    hydrator = UserFeaturesHydrator(dead_thunder)
    with pytest.raises(Exception):
        await hydrator.hydrate(query())                      # no copy: the hydrator fails
    dead_thunder.cache.put_features(VIEWER, UserFeatures(blocked=frozenset({5})))
    q = query()
    hydrated = await hydrator.hydrate(q)
    assert hydrated.user_features.blocked == {5} and "user_features_cached" in q.notes


async def test_core_data_from_the_cache_never_marks_uncached_posts_missing(dead_thunder):
    dead_thunder.cache.put_posts([common_pb2.Post(post_id=1, author_id=7, text="cached")])
    q = query(UserFeatures())
    cached, uncached = (await CoreDataHydrator(dead_thunder).hydrate(q, [cand(1), cand(2)]))
    assert cached.core_data_found is True and cached.text == "cached"
    assert uncached.core_data_found is None                  # unknown, not "Thunder has no such post"
    assert "core_data_cached" in q.notes


async def test_visibility_takes_a_later_deletion_from_the_cache(dead_thunder):
    dead_thunder.cache.put_posts([common_pb2.Post(post_id=1, author_id=7, deleted=True, labels=[common_pb2.SPAM])])
    q = query(UserFeatures())
    [record] = await VisibilityHydrator(dead_thunder).hydrate(q, [cand(1, core_data_found=True)])
    assert record.deleted and record.labels == (common_pb2.SPAM,) and "visibility_cached" in q.notes
