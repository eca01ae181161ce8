"""When Thunder does not answer (nothing listens on its port), the hydrators fall back to the
safety cache where it has a copy, and leave the facts unknown where it has none."""
from __future__ import annotations

import pytest

from foryou.broker import free_port
from foryou_protos import common_pb2
from tests.home_mixer.hm_helpers import VIEWER, batch, cand, query
from home_mixer.candidates import CORE_FOUND, CORE_UNKNOWN, label_mask
from home_mixer.clients import ThunderClient
from home_mixer.hydrators.core_data import CoreDataHydrator
from home_mixer.hydrators.visibility import VisibilityHydrator
from home_mixer.query import UserFeatures
from home_mixer.query_hydrators.user_features import UserFeaturesHydrator
from home_mixer.wire import columns_from_posts


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
    dead_thunder.cache.put_posts(columns_from_posts([common_pb2.Post(post_id=1, author_id=7, text="cached")]))
    q = query(UserFeatures())
    hydrated = await CoreDataHydrator(dead_thunder).hydrate(q, batch(cand(1, author=0), cand(2)))
    assert hydrated["core_data"].tolist() == [CORE_FOUND, CORE_UNKNOWN]  # unknown, not "Thunder has no such post"
    assert hydrated["text"].tolist() == ["cached", ""] and hydrated["author_id"].tolist() == [7, 7]
    assert "core_data_cached" in q.notes


async def test_visibility_takes_a_later_deletion_from_the_cache(dead_thunder):
    dead_thunder.cache.put_posts(columns_from_posts([
        common_pb2.Post(post_id=1, author_id=7, deleted=True, labels=[common_pb2.SPAM])]))
    q = query(UserFeatures())
    hydrated = await VisibilityHydrator(dead_thunder).hydrate(q, batch(cand(1, core_data_found=True), cand(2)))
    assert hydrated["deleted"].tolist() == [True, False] and "visibility_cached" in q.notes
    assert hydrated["label_mask"].tolist() == [label_mask([common_pb2.SPAM]), 0]
    assert hydrated["visibility_reason"].tolist() == ["spam", ""]
