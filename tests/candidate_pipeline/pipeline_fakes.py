"""Configurable test components: each records its name in a shared trace when called, can
wait on something first (a barrier, an event), and can raise."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from candidate_pipeline import (
    Filter, FilterResult, Hydrator, PipelineResult, QueryHydrator, Scorer, Selector, SideEffect, Source,
)
from foryou.logs import request_id_var


@dataclass
class Query:
    user_id: int = 1
    request_id: str = ""
    features: dict = field(default_factory=dict)
    disabled_components: set[str] = field(default_factory=set)


@dataclass
class Cand:
    id: int
    source: str = ""
    tags: dict = field(default_factory=dict)
    score: float = 0.0


def forever() -> Awaitable[None]:
    """Something that never finishes (until cancelled by a timeout)."""
    return asyncio.Event().wait()


class Behaviour:
    def __init__(self, name: str, *, before: Callable[[], Awaitable] | None = None,
                 error: Exception | None = None, trace: list[str] | None = None,
                 enabled: bool = True, timeout_s: float | None = None):
        self.name, self.before, self.error, self.trace = name, before, error, trace
        self.enabled, self.timeout_s = enabled, timeout_s
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

    async def hydrate(self, query: Query) -> Query:
        await self.act()
        return Query(features=dict(self.features))

    def update(self, query: Query, hydrated: Query) -> None:
        query.features.update(hydrated.features)


class FakeSource(Behaviour, Source[Query, Cand]):
    def __init__(self, name: str, ids: list[int] | Callable[[Query], list[int]], **kw):
        super().__init__(name, **kw)
        self.ids = ids
        self.seen_request_ids: list[str] = []

    async def get_candidates(self, query: Query) -> list[Cand]:
        self.seen_request_ids.append(request_id_var.get())
        await self.act()
        ids = self.ids(query) if callable(self.ids) else self.ids
        return [Cand(i, source=self.name) for i in ids]


class FakeHydrator(Behaviour, Hydrator[Query, Cand]):
    """Tags every candidate with `tags`; returns `drop` records too few."""

    def __init__(self, name: str, tags: dict, drop: int = 0, **kw):
        super().__init__(name, **kw)
        self.tags, self.drop = tags, drop
        self.seen_tags: list[dict] = []

    async def hydrate(self, query: Query, candidates: list[Cand]) -> list[Cand]:
        self.seen_tags = [dict(c.tags) for c in candidates]
        await self.act()
        records = [Cand(c.id, tags=dict(self.tags)) for c in candidates]
        return records[: len(records) - self.drop]

    def update(self, candidate: Cand, hydrated: Cand) -> None:
        candidate.tags.update(hydrated.tags)


class FakeFilter(Behaviour, Filter[Query, Cand]):
    def __init__(self, name: str, remove_ids: set[int], **kw):
        super().__init__(name, **kw)
        self.remove_ids = remove_ids

    async def filter(self, query: Query, candidates: list[Cand]) -> FilterResult[Cand]:
        await self.act()
        return FilterResult(kept=[c for c in candidates if c.id not in self.remove_ids],
                            removed=[c for c in candidates if c.id in self.remove_ids])


class FakeScorer(Behaviour, Scorer[Query, Cand]):
    """score <- rescore(previous score, candidate id); returns `extra` records too many."""

    def __init__(self, name: str, rescore: Callable[[float, int], float], extra: int = 0, **kw):
        super().__init__(name, **kw)
        self.rescore, self.extra = rescore, extra

    async def score(self, query: Query, candidates: list[Cand]) -> list[Cand]:
        await self.act()
        scored = [Cand(c.id, score=self.rescore(c.score, c.id)) for c in candidates]
        return scored + [Cand(-1)] * self.extra

    def update(self, candidate: Cand, scored: Cand) -> None:
        candidate.score = scored.score


class TopScore(Behaviour, Selector[Query, Cand]):
    def __init__(self, name: str = "TopScore", k: int = 1000, **kw):
        super().__init__(name, **kw)
        self.k = k

    def select(self, query: Query, candidates: list[Cand]) -> list[Cand]:
        self.calls += 1
        if self.trace is not None:
            self.trace.append(self.name)
        if self.error is not None:
            raise self.error
        return sorted(candidates, key=lambda c: c.score, reverse=True)[: self.k]


class RecordResult(Behaviour, SideEffect[Query, Cand]):
    """Appends (result, request id seen by the task) to `sink`."""

    def __init__(self, name: str, sink: list, **kw):
        super().__init__(name, **kw)
        self.sink = sink

    async def run(self, query: Query, result: PipelineResult[Query, Cand]) -> None:
        await self.act()
        self.sink.append((result, request_id_var.get()))


def ids(candidates: list[Cand]) -> list[int]:
    return [c.id for c in candidates]
