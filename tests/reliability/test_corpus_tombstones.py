"""Phoenix corpus tombstones: a delete wins over its create in either order, within one poll
or across polls, and over a redelivered create; tombstones survive a re-embedding and leave
with the retention. Driven through the feeder's real apply path with real records."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2
from phoenix.index import CorpusIndex
from phoenix.server_corpus import CorpusFeeder

DIM = 4
_low = itertools.count(11)
_offsets = itertools.count()


@dataclass
class Record:  # what aiokafka hands the feeder: only these fields are read
    key: bytes
    value: bytes
    partition: int = 0
    offset: int = 0


def post_id() -> int:
    return snowflake.make_id(snowflake.now_ms() - 60_000, next(_low))


def create(pid: int) -> Record:
    return Record(str(pid).encode(), topics.encode(events_pb2.PostEvent(created=common_pb2.Post(post_id=pid, author_id=7,
                                                   created_at_ms=snowflake.created_at_ms(pid)))),
                  offset=next(_offsets))


def delete(pid: int) -> Record:
    return Record(str(pid).encode(), topics.encode(events_pb2.PostEvent(deleted=events_pb2.PostDeleted(post_id=pid, author_id=7))),
                  offset=next(_offsets))


def embed(ids: np.ndarray, authors: np.ndarray) -> np.ndarray:
    return np.ones((len(ids), DIM), np.float32)


@pytest.fixture
def feeder():
    index = CorpusIndex(DIM)
    return CorpusFeeder("unused:0", lambda: (index, embed), max_age_ms=48 * 3600 * 1000), index


def found(index: CorpusIndex) -> set[int]:
    return {p.post_id for p in index.search(np.ones((1, DIM)), 100)[0]}


@pytest.mark.parametrize("polls", [
    [["create", "delete"]], [["delete", "create"]],          # one poll, both orders
    [["create"], ["delete"]], [["delete"], ["create"]],      # two polls, both orders
    [["create"], ["delete"], ["create"]],                    # a create redelivered after its delete
    [["delete", "create"], ["create", "delete"], ["create"]],
], ids=["c-d", "d-c", "c|d", "d|c", "c|d|c", "dc|cd|c"])
async def test_a_deleted_post_is_never_retrieved_whatever_the_order(feeder, polls):
    feeder, index = feeder
    gone, kept = post_id(), post_id()
    await feeder.apply([create(kept)])
    for poll in polls:
        await feeder.apply([create(gone) if kind == "create" else delete(gone) for kind in poll])
    assert gone not in index and found(index) == {kept}
    assert index.is_deleted(gone)


def test_tombstones_move_to_a_rebuilt_index_and_expire_with_retention():
    old, fresh = CorpusIndex(DIM), CorpusIndex(DIM)
    gone = post_id()
    old.delete([gone])
    fresh.upsert([gone], [7], np.ones((1, DIM)))     # e.g. re-embedded from a stale snapshot
    fresh.copy_tombstones_from(old)
    assert gone not in fresh and fresh.is_deleted(gone)
    fresh.upsert([gone], [7], np.ones((1, DIM)))
    assert gone not in fresh
    fresh.expire(snowflake.now_ms(), max_age_ms=1)      # older than the retention: forgotten
    assert not fresh.is_deleted(gone)


async def test_a_reset_log_is_rebuilt_aside_while_the_old_corpus_keeps_answering():
    """After a rewound or reset `posts` log the replay fills a new index; Retrieve keeps the old
    corpus until the replay has caught up, then the rebuilt one is installed whole."""
    serving = {"index": CorpusIndex(DIM)}
    feeder = CorpusFeeder("unused:0", lambda: (serving["index"], embed), max_age_ms=48 * 3600 * 1000,
                          install=lambda index: serving.update(index=index))
    old_post, new_post, deleted = post_id(), post_id(), post_id()
    await feeder.apply([create(old_post), create(deleted)])
    before = serving["index"]
    await feeder._reset()
    await feeder.apply([create(new_post), create(deleted), delete(deleted)])  # the new log's replay
    assert serving["index"] is before and found(before) == {old_post, deleted}  # still the old corpus
    await feeder._install_rebuilt()
    assert serving["index"] is not before and found(serving["index"]) == {new_post}
    assert serving["index"].is_deleted(deleted) and feeder.rebuilding is None
    await feeder._install_rebuilt()  # caught up again without a reset: nothing changes
    assert found(serving["index"]) == {new_post}
