"""The seven component kinds of a candidate pipeline, generic over a query type Q and a
candidate type C. Subclasses implement the abstract methods; the Pipeline decides when they
run, in parallel or in sequence, with which timeout, and what happens when they fail."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from candidate_pipeline.result import PipelineResult

Q = TypeVar("Q")
C = TypeVar("C")


class Component(ABC, Generic[Q]):
    """Base of all seven kinds. `name` labels logs and metrics and is what a query's
    `disabled_components` refers to; it defaults to the class name."""

    name: str = "Component"
    timeout_s: float | None = None  # None: the pipeline's default_timeout_s

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def enable(self, query: Q) -> bool:
        return True


class QueryHydrator(Component[Q]):
    """Adds data to the query (user features, history). All run in parallel on the same
    query; then each `update` merges its result into the query, in list order."""

    @abstractmethod
    async def hydrate(self, query: Q) -> Q: ...

    @abstractmethod
    def update(self, query: Q, hydrated: Q) -> None: ...


class Source(Component[Q], Generic[Q, C]):
    """Fetches candidates. All run in parallel; results are concatenated in list order."""

    @abstractmethod
    async def get_candidates(self, query: Q) -> list[C]: ...


class Hydrator(Component[Q], Generic[Q, C]):
    """Returns one enriched record per input candidate, in the same order; `update` merges
    a record into its candidate. All hydrators of a stage see the same candidates."""

    @abstractmethod
    async def hydrate(self, query: Q, candidates: list[C]) -> list[C]: ...

    @abstractmethod
    def update(self, candidate: C, hydrated: C) -> None: ...


@dataclass
class FilterResult(Generic[C]):
    kept: list[C]
    removed: list[C]


class Filter(Component[Q], Generic[Q, C]):
    """Splits candidates into kept and removed. Filters run one after another.

    `fail_closed`: what a failure (raise, timeout, bad result, raising `enable`) means. False:
    the filter is skipped and its input passes through (a convenience filter). True: every
    candidate it was given is removed in its name (a safety filter, whose check may not be
    skipped)."""

    fail_closed: bool = False

    @abstractmethod
    async def filter(self, query: Q, candidates: list[C]) -> FilterResult[C]: ...


class Scorer(Component[Q], Generic[Q, C]):
    """Returns one scored record per candidate, same order; `update` merges the scores.
    Scorers run one after another, so a later scorer reads the earlier scores."""

    @abstractmethod
    async def score(self, query: Q, candidates: list[C]) -> list[C]: ...

    @abstractmethod
    def update(self, candidate: C, scored: C) -> None: ...


class Selector(Component[Q], Generic[Q, C]):
    """Orders the candidates and keeps the top ones. Synchronous: pure ordering, no I/O."""

    @abstractmethod
    def select(self, query: Q, candidates: list[C]) -> list[C]: ...


class SideEffect(Component[Q], Generic[Q, C]):
    """Does something with the final result (cache, log, publish) after it is returned;
    the response never waits for it and never sees its errors."""

    @abstractmethod
    async def run(self, query: Q, result: PipelineResult[Q, C]) -> None: ...
