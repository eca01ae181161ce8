"""The seven component kinds of a candidate pipeline, generic over a query type Q and a
candidate batch type B (a ColumnBatch subclass, batch.py). Subclasses implement the abstract
methods; the Pipeline decides when they run, in parallel or in sequence, with which timeout,
and what happens when they fail.

Every component declares the columns it reads and writes (`reads`, `writes`; for query
hydrators, the query fields). The pipeline checks at construction that every read has a
writer earlier in the order, and at run time that a component returns only what it declared,
so the data flow between components is visible in their class bodies."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np

if TYPE_CHECKING:
    from candidate_pipeline.result import PipelineResult

Q = TypeVar("Q")
B = TypeVar("B")

# What hydrators and scorers return: new values of (some of) the columns they declare.
Columns = Mapping[str, Any]


class Component(ABC, Generic[Q]):
    """Base of all seven kinds. `name` labels logs and metrics and is what a query's
    `disabled_components` refers to; it defaults to the class name."""

    name: str = "Component"
    timeout_s: float | None = None  # None: the pipeline's default_timeout_s
    reads: tuple[str, ...] = ()     # columns (query fields for a QueryHydrator) it needs
    writes: tuple[str, ...] = ()    # columns (query fields) it produces

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__

    def enable(self, query: Q) -> bool:
        return True


class QueryHydrator(Component[Q]):
    """Adds data to the query (user features, history). Query hydrators run in parallel,
    except that one reading a query field another one `writes` runs after it (a later wave);
    each `update` merges its result into the query, in list order within a wave."""

    @abstractmethod
    async def hydrate(self, query: Q) -> Q: ...

    @abstractmethod
    def update(self, query: Q, hydrated: Q) -> None: ...


class Source(Component[Q], Generic[Q, B]):
    """Fetches candidates as a batch with the columns in `writes`. All run in parallel;
    batches are concatenated in list order."""

    @abstractmethod
    async def get_candidates(self, query: Q) -> B: ...


class Hydrator(Component[Q], Generic[Q, B]):
    """Returns the columns it owns (`writes`), one value per candidate in batch order.
    Hydrators of a stage run in parallel on the same batch, except that one reading a column
    another hydrator of the stage writes runs after it (a later wave)."""

    @abstractmethod
    async def hydrate(self, query: Q, candidates: B) -> Columns: ...


class Filter(Component[Q], Generic[Q, B]):
    """Returns a keep mask (bool, one per candidate). Filters run one after another; the
    pipeline records what each removed.

    `fail_closed`: what a failure (raise, timeout, bad result, raising `enable`) means. False:
    the filter is skipped and its input passes through (a convenience filter). True: every
    candidate it was given is removed in its name (a safety filter, whose check may not be
    skipped)."""

    fail_closed: bool = False

    @abstractmethod
    async def filter(self, query: Q, candidates: B) -> np.ndarray: ...


class Scorer(Component[Q], Generic[Q, B]):
    """Returns score columns (`writes`), one value per candidate. Scorers run one after
    another, so a later scorer reads the earlier scores."""

    @abstractmethod
    async def score(self, query: Q, candidates: B) -> Columns: ...


class Selector(Component[Q], Generic[Q, B]):
    """Returns the positions of the candidates to keep, best first (synchronous: pure
    ordering, no I/O). The candidates it leaves out reach side effects as `not_selected`."""

    @abstractmethod
    def select(self, query: Q, candidates: B) -> np.ndarray: ...


class SideEffect(Component[Q], Generic[Q, B]):
    """Does something with the final result (cache, log, publish) after it is returned;
    the response never waits for it and never sees its errors. `result.not_selected` holds
    the candidates that were ranked but cut by the selector or the result size."""

    @abstractmethod
    async def run(self, query: Q, result: PipelineResult[Q, B]) -> None: ...
