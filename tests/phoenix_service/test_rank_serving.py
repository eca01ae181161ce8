"""Rank's serving path: which requests share a model call, and when a micro-batch closes
early; neither may change the numbers (to float rounding)."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from foryou.packed import float16_bytes, float16_rows
from phoenix.config import V2_INPUTS, tiny_ranker_config
from phoenix.content import CONTENT_DIM, ContentStore
from phoenix.features import MAX_CANDIDATE_CHUNK, CandidateItem, HistoryItem
from phoenix.runtime import RANK_ALONE_CANDIDATES, RankerRuntime
from phoenix.server_batching import MicroBatcher

NOW = 1_800_000_000_000


@pytest.fixture(scope="module")
def content_runtime() -> RankerRuntime:
    """A tiny model with the v2 inputs, its store holding content for posts 1..600."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(600, CONTENT_DIM)).astype(np.float32)
    store = ContentStore()
    store.put(list(range(1, 601)), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    runtime = RankerRuntime.init(tiny_ranker_config(inputs=V2_INPUTS))
    runtime.use_store(store)
    return runtime


def _request(user: int, first_post: int, n: int):
    history = [HistoryItem(first_post + 500 - i, 9, (0,), 1) for i in range(3)]
    return user, history, [CandidateItem(first_post + i, 1 + i % 7) for i in range(n)]


def test_rank_many_ranks_big_requests_alone_and_small_ones_together(content_runtime):
    requests = [_request(1, 1, RANK_ALONE_CANDIDATES + 44), _request(2, 301, 5), _request(3, 320, 0),
                _request(4, 340, 9)]
    calls = []
    original = content_runtime._batch

    def counting(user_ids, *args, **kwargs):
        calls.append(len(user_ids))
        return original(user_ids, *args, **kwargs)

    content_runtime._batch = counting  # type: ignore[method-assign]
    try:
        ranked = content_runtime.rank_many_ranked(requests, now_ms=NOW)
    finally:
        del content_runtime._batch
    assert sorted(calls) == [1, 2]  # the big one alone; the two small ones in one call (no empty one)
    for (user, history, cands), out in zip(requests, ranked):
        alone = content_runtime.rank(user, history, cands, now_ms=NOW)
        assert out.predictions.shape == (len(cands), content_runtime.num_outputs)
        np.testing.assert_allclose(out.predictions, alone, atol=1e-5)
        assert out.content is not None and out.content.shape == (len(cands), CONTENT_DIM)
        assert out.content.dtype == np.float16  # the reply's precision, converted inside the model call
        np.testing.assert_array_equal(out.content, content_runtime.features.content(
            np.asarray([c.post_id for c in cands], np.uint64)))


async def test_a_big_item_closes_its_micro_batch_at_once():
    seen: list[list[int]] = []

    def run(items):
        seen.append(list(items))
        return items

    batcher = MicroBatcher("t", run, max_batch=8, max_wait_ms=200, size=lambda n: n, max_size=100)
    assert await asyncio.gather(batcher.submit(150), batcher.submit(3), batcher.submit(4)) == [150, 3, 4]
    assert seen == [[150], [3, 4]]  # without max_size the three would share one batch
    seen.clear()
    assert await asyncio.gather(batcher.submit(60), batcher.submit(50), batcher.submit(1)) == [60, 50, 1]
    assert seen == [[60, 50], [1]]  # closed once the total reached max_size
    await batcher.close()
    with pytest.raises(ValueError):
        MicroBatcher("t", run, max_batch=8, max_wait_ms=1, size=lambda n: n)


async def test_batcher_workers_run_that_many_batches_at_once():
    """With two workers two big items run at the same time (each batch function waits for the
    other at a barrier, which one worker alone would never pass); results keep their callers."""
    barrier = threading.Barrier(2, timeout=2)

    def run(items):
        barrier.wait()
        return [x + 1 for x in items]

    batcher = MicroBatcher("t", run, max_batch=8, max_wait_ms=1, size=lambda n: n, max_size=100, workers=2)
    assert await asyncio.gather(batcher.submit(150), batcher.submit(200)) == [151, 201]
    await batcher.close()
    one = MicroBatcher("t", run, max_batch=8, max_wait_ms=1, size=lambda n: n, max_size=100)
    barrier.reset()
    results = await asyncio.gather(one.submit(150), one.submit(200), return_exceptions=True)
    assert all(isinstance(r, threading.BrokenBarrierError) for r in results)  # one at a time: the barrier times out
    await one.close()
    with pytest.raises(ValueError):
        MicroBatcher("t", run, max_batch=8, max_wait_ms=1, workers=0)


def test_a_chunked_request_returns_every_candidates_content_as_float16(content_runtime):
    """Past one chunk (MAX_CANDIDATE_CHUNK) the content still comes out of the model calls, in
    candidate order, equal to the store's rows (posts 601.. have none: zeros)."""
    user, history, cands = _request(5, 1, MAX_CANDIDATE_CHUNK + 30)
    [out] = content_runtime.rank_many_ranked([(user, history, cands)], now_ms=NOW)
    ids = np.asarray([c.post_id for c in cands], np.uint64)
    assert out.content is not None and out.content.dtype == np.float16
    np.testing.assert_array_equal(out.content, content_runtime.features.content(ids))
    assert out.content[:600].any(axis=1).all() and not out.content[600:].any()
    np.testing.assert_allclose(out.predictions, content_runtime.rank_full_sequence(user, history, cands, now_ms=NOW),
                               atol=1e-5)


def test_float16_bytes_round_trip_float16_values_exactly():
    values = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float16).astype(np.float32)
    data = float16_bytes(values)
    assert len(data) == values.size * 2
    np.testing.assert_array_equal(float16_rows(data, 4), values)
    assert float16_rows(b"", 4).shape == (0, 4)
    with pytest.raises(ValueError):
        float16_rows(data, 5)
