"""Configurable test components: each records its name in a shared trace when called, can
wait on something first (a barrier, an event), and can raise."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from candidate_pipeline import (
    Column, ColumnBatch, Filter, Hydrator, Pipeline, PipelineResult, QueryHydrator, Scorer, Selector, SideEffect,
    Source,
)
from foryou.logs import request_id_var, request_scope

# Tag columns the fake hydrators write (0 = not written).
TAGS = ("a", "b", "x", "y", "z", "good", "short", "color")


class CandBatch(ColumnBatch):
    SCHEMA = {"id": Column(np.int64), "source": Column(object, ""), "score": Column(np.float64),
              **{tag: Column(np.int64) for tag in TAGS}}


def pipeline(**kwargs) -> Pipeline:
    """A test pipeline over CandBatch, with the request id in foryou.logs' context variable."""
    return Pipeline(batch_type=CandBatch, request_scope=request_scope, **kwargs)


@dataclass
class Query:
    user_id: int = 1
    request_id: str = ""
    features: dict = field(default_factory=dict)
    disabled_components: set[str] = field(default_factory=set)


def forever() -> Awaitable[object]:
    """Something that never finishes (until cancelled by a timeout)."""
    return asyncio.Event().wait()


class Behaviour:
    def __init__(self, name: str, *, before: Callable[[], Awaitable] | None = None,
                 error: Exception | None = None, trace: list[str] | None = None,
                 enabled: bool = True, timeout_s: float | None = None,
                 reads: tuple[str, ...] | None = None, writes: tuple[str, ...] | None = None):
        self.name, self.before, self.error, self.trace = name, before, error, trace
        self.enabled, self.timeout_s = enabled, timeout_s
        if reads is not None:
            self.reads = reads
        if writes is not None:
            self.writes = writes
        self.calls = 0

    async def act(self) -> None:
        self.calls += 1
        if self.trace is not None:
            self.trace.append(self.name)
        if self.before is not None:
            await self.before()
        if self.error is not None:
            raise self.error

    def enable(self, query) -> bool:
        return self.enabled


class FakeQueryHydrator(Behaviour, QueryHydrator[Query]):
    def __init__(self, name: str, features: dict, **kw):
        super().__init__(name, **kw)
        self.features = features
        self.seen_features: dict = {}

    async def hydrate(self, query: Query) -> Query:
        self.seen_features = dict(query.features)
        await self.act()
        return Query(features=dict(self.features))

    def update(self, query: Query, hydrated: Query) -> None:
        query.features.update(hydrated.features)


class FakeSource(Behaviour, Source[Query, CandBatch]):
    writes = ("id", "source", "score")  # score: 0 until a scorer writes it

    def __init__(self, name: str, ids: list[int] | Callable[[Query], list[int]], **kw):
        super().__init__(name, **kw)
        self.ids = ids
        self.seen_request_ids: list[str] = []

    async def get_candidates(self, query: Query) -> CandBatch:
        self.seen_request_ids.append(request_id_var.get())
        await self.act()
        ids = self.ids(query) if callable(self.ids) else self.ids
        return CandBatch(len(ids), {"id": ids, "source": [self.name] * len(ids)})


class FakeHydrator(Behaviour, Hydrator[Query, CandBatch]):
    """Writes `tags` (column -> value) for every candidate; returns `drop` values too few."""

    def __init__(self, name: str, tags: dict[str, int], drop: int = 0, **kw):
        kw.setdefault("writes", tuple(tags))
        super().__init__(name, **kw)
        self.tags, self.drop = tags, drop
        self.seen: dict[str, list[int]] = {}

    async def hydrate(self, query: Query, candidates: CandBatch):
        self.seen = {tag: candidates[tag].tolist() for tag in TAGS}
        await self.act()
        n = len(candidates) - self.drop
        return {tag: np.full(n, value) for tag, value in self.tags.items()}


class FakeFilter(Behaviour, Filter[Query, CandBatch]):
    reads = ("id",)

    def __init__(self, name: str, remove_ids: set[int], **kw):
        super().__init__(name, **kw)
        self.remove_ids = remove_ids

    async def filter(self, query: Query, candidates: CandBatch) -> np.ndarray:
        await self.act()
        return ~np.isin(candidates["id"], list(self.remove_ids))


class FakeScorer(Behaviour, Scorer[Query, CandBatch]):
    """score <- rescore(previous score, candidate id); returns `extra` values too many."""

    reads = ("id",)
    writes = ("score",)

    def __init__(self, name: str, rescore: Callable[[float, int], float], extra: int = 0, **kw):
        super().__init__(name, **kw)
        self.rescore, self.extra = rescore, extra

    async def score(self, query: Query, candidates: CandBatch):
        await self.act()
        scores = [self.rescore(s, i) for s, i in candidates.rows("score", "id")]
        return {"score": np.array(scores + [50.0] * self.extra)}


class TopScore(Behaviour, Selector[Query, CandBatch]):
    reads = ("score",)

    def __init__(self, name: str = "TopScore", k: int = 1000, **kw):
        super().__init__(name, **kw)
        self.k = k

    def select(self, query: Query, candidates: CandBatch) -> np.ndarray:
        self.calls += 1
        if self.trace is not None:
            self.trace.append(self.name)
        if self.error is not None:
            raise self.error
        return np.argsort(-candidates["score"], kind="stable")[: self.k]


class RecordResult(Behaviour, SideEffect[Query, CandBatch]):
    """Appends (result, request id seen by the task) to `sink`."""

    def __init__(self, name: str, sink: list, **kw):
        super().__init__(name, **kw)
        self.sink = sink

    async def run(self, query: Query, result: PipelineResult[Query, CandBatch]) -> None:
        await self.act()
        self.sink.append((result, request_id_var.get()))


def ids(candidates: CandBatch) -> list[int]:
    return candidates["id"].tolist()
