"""The executor. `Pipeline.execute` reads top to bottom as the flow of one request:

    query hydrators (parallel waves) -> sources (parallel) -> hydrators (parallel waves) ->
    filters (sequential) -> scorers (sequential) -> selector -> post-selection hydrators ->
    post-selection filters -> truncate to result_size -> start side effects -> return

Candidates travel as one columnar batch (batch.py). Construction checks the declared columns
(`reads`/`writes`, ordering.py): every column read has a writer earlier in the order, else ColumnOrderError
names the column and the components. Within a parallel stage a component that reads what
another one of the stage writes runs in a later wave, after it.

Error policy: a component that raises or times out is recorded (result.errors, a metric, a
log line with request id, pipeline, stage, component) and skipped; a hydrator or scorer
whose columns are not aligned with the batch, or that returns a column it did not declare, is
skipped; a failing filter passes its input through, unless it declares `fail_closed`, when it
removes all of it; side effects run as tasks after the result is returned and their errors
stay here.

Generic: imports nothing of the services. Logs go to `logger` (fields in the record's `fields`);
`request_scope(request_id)`, if given, is entered around each run. Each stage from the
hydrators on starts with one turn of the event loop (suspended.py, `let_others_run`)."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

import numpy as np

from candidate_pipeline import metrics
from candidate_pipeline.batch import ColumnBatch
from candidate_pipeline.components import B, Component, Filter, Hydrator, Q, QueryHydrator, Scorer
from candidate_pipeline.components import Selector, SideEffect, Source
from candidate_pipeline.ordering import check_sequential, waves
from candidate_pipeline.result import ComponentError, PipelineResult, Removed, StageTiming
from candidate_pipeline.suspended import Suspended, let_others_run

_log = logging.getLogger(__name__)

QUERY_HYDRATORS = "query_hydrators"
SOURCES = "sources"
HYDRATORS = "hydrators"
FILTERS = "filters"
SCORERS = "scorers"
SELECTOR = "selector"
POST_SELECTION_HYDRATORS = "post_selection_hydrators"
POST_SELECTION_FILTERS = "post_selection_filters"
SIDE_EFFECTS = "side_effects"
TOTAL = "total"  # the stage label of the whole run's latency

_FAILED: Any = object()  # what a component call yields when it raised, timed out or misaligned


@dataclass
class _Run(Generic[Q, B]):
    """The state of one `execute` call."""
    query: Q
    request_id: str
    disabled: Collection[str]
    timings: list[StageTiming] = field(default_factory=list)
    errors: list[ComponentError] = field(default_factory=list)
    removed: list[Removed[B]] = field(default_factory=list)


@dataclass
class Pipeline(Generic[Q, B]):
    name: str
    query_hydrators: list[QueryHydrator[Q]] = field(default_factory=list)
    sources: list[Source[Q, B]] = field(default_factory=list)
    hydrators: list[Hydrator[Q, B]] = field(default_factory=list)
    filters: list[Filter[Q, B]] = field(default_factory=list)
    scorers: list[Scorer[Q, B]] = field(default_factory=list)
    selector: Selector[Q, B] | None = None
    post_selection_hydrators: list[Hydrator[Q, B]] = field(default_factory=list)
    post_selection_filters: list[Filter[Q, B]] = field(default_factory=list)
    side_effects: list[SideEffect[Q, B]] = field(default_factory=list)
    result_size: Callable[[Q], int] | int = 35
    default_timeout_s: float | None = 1.0  # None: no timeout
    # Per component name; wins over the component's own timeout_s (configuration, not code).
    timeouts: dict[str, float] = field(default_factory=dict)
    batch_type: type[ColumnBatch] = ColumnBatch  # what sources return: concat / empty come from it
    logger: logging.Logger | logging.LoggerAdapter = _log
    request_scope: Callable[[str], contextlib.AbstractContextManager] | None = None
    _side_effect_tasks: set[asyncio.Task] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._query_waves = waves(QUERY_HYDRATORS, self.query_hydrators, None)
        available: set[str] = set()
        for source in self.sources:
            available.update(source.writes)
        self._hydrator_waves = waves(HYDRATORS, self.hydrators, available)
        available.update(c for h in self.hydrators for c in h.writes)
        self._check_sequential(FILTERS, self.filters, available)
        self._check_sequential(SCORERS, self.scorers, available)
        self._check_sequential(SELECTOR, [self.selector] if self.selector else [], available)
        self._post_waves = waves(POST_SELECTION_HYDRATORS, self.post_selection_hydrators, available)
        available.update(c for h in self.post_selection_hydrators for c in h.writes)
        self._check_sequential(POST_SELECTION_FILTERS, self.post_selection_filters, available)
        self._check_sequential(SIDE_EFFECTS, self.side_effects, available)
        self.columns_written = frozenset(available)

    def _check_sequential(self, stage: str, components: list, available: set[str]) -> None:
        later_stages = [*self.filters, *self.scorers, *([self.selector] if self.selector else []),
                        *self.post_selection_hydrators, *self.post_selection_filters]
        check_sequential(stage, components, available, later_stages)

    async def execute(self, query: Q, request_id: str | None = None) -> PipelineResult[Q, B]:
        request_id = str(request_id or getattr(query, "request_id", None) or uuid.uuid4().hex)
        scope = self.request_scope(request_id) if self.request_scope else contextlib.nullcontext()
        with scope:
            started = time.perf_counter()
            run: _Run[Q, B] = _Run(query, request_id, getattr(query, "disabled_components", None) or ())
            await self._hydrate_query(run)
            candidates = await self._fetch(run)
            candidates = await self._hydrate(run, HYDRATORS, self._hydrator_waves, candidates)
            candidates = await self._filter(run, FILTERS, self.filters, candidates)
            candidates = await self._score(run, candidates)
            candidates, not_selected = self._select(run, candidates)
            candidates = await self._hydrate(run, POST_SELECTION_HYDRATORS, self._post_waves, candidates)
            candidates = await self._filter(run, POST_SELECTION_FILTERS, self.post_selection_filters, candidates)
            size = self._result_size(query)
            selected = candidates
            if len(candidates) > size:
                selected = candidates.take(np.arange(size))
                not_selected = self.batch_type.concat([candidates.take(np.arange(size, len(candidates))),
                                                       not_selected])
            self._stage_done(run, TOTAL, started, len(candidates), len(selected))
            # Copies: side effects keep recording into `run` after the caller has the result.
            result = PipelineResult(query=query, selected=selected, removed=list(run.removed),
                                    timings=list(run.timings), errors=list(run.errors), request_id=run.request_id,
                                    not_selected=not_selected)
            self._start_side_effects(run, result)
            return result

    async def drain_side_effects(self) -> None:
        """Wait for the side effects already started (tests, graceful shutdown)."""
        while self._side_effect_tasks:
            await asyncio.gather(*self._side_effect_tasks, return_exceptions=True)

    # -- stages --------------------------------------------------------------------------

    async def _hydrate_query(self, run: _Run) -> None:
        started = time.perf_counter()
        for wave in self._query_waves:
            hydrators = self._enabled(run, QUERY_HYDRATORS, wave)
            results = await self._parallel(run, QUERY_HYDRATORS, [(h, h.hydrate, (run.query,)) for h in hydrators])
            for hydrator, hydrated in zip(hydrators, results):  # merged in list order, not finishing order
                if hydrated is not _FAILED:
                    self._guarded(run, QUERY_HYDRATORS, hydrator, hydrator.update, run.query, hydrated)
        self._stage_done(run, QUERY_HYDRATORS, started, 0, 0)

    async def _fetch(self, run: _Run):
        started = time.perf_counter()
        sources = self._enabled(run, SOURCES, self.sources)
        results = await self._parallel(run, SOURCES, [(s, s.get_candidates, (run.query,)) for s in sources])
        batches = []
        for source, found in zip(sources, results):
            if found is _FAILED:
                continue
            if not isinstance(found, self.batch_type):
                self._fail(run, SOURCES, source, "exception", f"returned {type(found).__name__}, not a batch")
                continue
            undeclared = sorted(found.names - set(source.writes))
            if undeclared:
                self._fail(run, SOURCES, source, "exception", f"wrote undeclared column {undeclared[0]!r}")
                continue
            self._count(SOURCES, source.name, 0, len(found))
            batches.append(found)
        candidates = self.batch_type.concat(batches)
        self._stage_done(run, SOURCES, started, 0, len(candidates))
        return candidates

    async def _hydrate(self, run: _Run, stage: str, stage_waves: list[list[Hydrator]], candidates):
        await let_others_run()
        started = time.perf_counter()
        n = len(candidates)
        for wave in stage_waves:
            enabled = self._enabled(run, stage, wave)
            calls = [(h, h.hydrate, (run.query, candidates)) for h in enabled]
            updates = []
            for hydrator, columns in zip(enabled, await self._parallel(run, stage, calls)):
                if self._columns_ok(run, stage, hydrator, n, columns):
                    self._count(stage, hydrator.name, n, n)
                    updates.append(columns)
            for columns in updates:  # applied in list order, after the whole wave ran on the same batch
                candidates = candidates.with_columns(columns)
        self._stage_done(run, stage, started, n, n)
        return candidates

    async def _filter(self, run: _Run, stage: str, filters: list[Filter], candidates):
        await let_others_run()
        started, given = time.perf_counter(), len(candidates)
        for filter_ in filters:
            if filter_.name in run.disabled:
                continue
            enable = self._guarded(run, stage, filter_, filter_.enable, run.query)
            if enable is not _FAILED and not enable:
                continue
            n = len(candidates)
            keep = _FAILED if enable is _FAILED else await self._call(
                run, stage, filter_, filter_.filter, run.query, candidates)
            if keep is not _FAILED and not (isinstance(keep, np.ndarray) and keep.dtype == np.bool_):
                self._fail(run, stage, filter_, "exception", f"returned {type(keep).__name__}, not a bool keep mask")
                keep = _FAILED
            if keep is not _FAILED and keep.shape != (n,):
                self._fail(run, stage, filter_, "length_mismatch", f"returned a mask of {keep.shape} for {n} candidates")
                keep = _FAILED
            if keep is _FAILED:
                if not filter_.fail_closed:
                    continue  # the candidates pass through unchanged
                keep = np.zeros(n, dtype=bool)  # unchecked means unsafe
            kept = int(np.count_nonzero(keep))
            self._count(stage, filter_.name, n, kept, n - kept)
            if kept < n:
                run.removed.append(Removed(candidates.mask(~keep), filter_.name, stage))
                candidates = candidates.mask(keep)
        self._stage_done(run, stage, started, given, len(candidates))
        return candidates

    async def _score(self, run: _Run, candidates):
        await let_others_run()
        started, n = time.perf_counter(), len(candidates)
        for scorer in self._enabled(run, SCORERS, self.scorers):  # in order: later scorers read earlier scores
            columns = await self._call(run, SCORERS, scorer, scorer.score, run.query, candidates)
            if self._columns_ok(run, SCORERS, scorer, n, columns):
                self._count(SCORERS, scorer.name, n, n)
                candidates = candidates.with_columns(columns)
        self._stage_done(run, SCORERS, started, n, n)
        return candidates

    def _select(self, run: _Run, candidates):
        started, given = time.perf_counter(), len(candidates)
        not_selected = self.batch_type.empty()
        selector = self.selector
        if selector is not None and self._enabled(run, SELECTOR, [selector]):
            order = self._guarded(run, SELECTOR, selector, selector.select, run.query, candidates)
            if order is not _FAILED:
                order = np.asarray(order)
                if order.ndim != 1 or (len(order) and (order.dtype.kind not in "iu" or order.min() < 0
                                                       or order.max() >= given)):
                    self._fail(run, SELECTOR, selector, "exception", "returned something other than row positions")
                    order = _FAILED
            self._component_done(run, SELECTOR, selector.name, started)
            if order is not _FAILED:
                self._count(SELECTOR, selector.name, given, len(order))
                left = np.ones(given, dtype=bool)
                left[order] = False
                not_selected = candidates.mask(left)
                candidates = candidates.take(order)
        self._stage_done(run, SELECTOR, started, given, len(candidates))
        return candidates, not_selected

    def _start_side_effects(self, run: _Run, result: PipelineResult) -> None:
        # Tasks copy the current context, so their logs still carry the request id.
        for effect in self._enabled(run, SIDE_EFFECTS, self.side_effects):
            task = asyncio.create_task(self._call(run, SIDE_EFFECTS, effect, effect.run, run.query, result),
                                       name=f"{self.name}/{effect.name}")
            self._side_effect_tasks.add(task)  # a reference, or the task may be garbage-collected mid-run
            task.add_done_callback(self._side_effect_tasks.discard)

    # -- calling components under the error policy -----------------------------------------

    def _enabled(self, run: _Run, stage: str, components: list) -> list:
        """The components that run for this query (a raising `enable` counts as a failure)."""
        enabled = []
        for component in components:
            if component.name in run.disabled:
                continue
            enable = self._guarded(run, stage, component, component.enable, run.query)
            if enable is not _FAILED and enable:
                enabled.append(component)
        return enabled

    async def _parallel(self, run: _Run, stage: str, calls: list[tuple[Component, Callable, tuple]]) -> list:
        """All calls of a parallel stage. Each is started in list order and runs until it first
        waits (I/O); only those still waiting are then awaited together, so pure computations
        cost no task."""
        results: list = []
        pending = []
        for component, method, args in calls:
            started = self._start(run, stage, component, method, args)
            if isinstance(started, Suspended):
                pending.append((len(results), started))
                results.append(None)
            else:
                results.append(started)
        if len(pending) == 1:
            results[pending[0][0]] = await self._finish(run, stage, pending[0][1])
        elif pending:
            finished = await asyncio.gather(*(self._finish(run, stage, s) for _, s in pending))
            for (position, _), value in zip(pending, finished):
                results[position] = value
        return results

    async def _call(self, run: _Run, stage: str, component: Component, method: Callable, *args) -> Any:
        """One component call under its timeout: its result, or _FAILED."""
        started = self._start(run, stage, component, method, args)
        return await self._finish(run, stage, started) if isinstance(started, Suspended) else started

    def _start(self, run: _Run, stage: str, component: Component, method: Callable, args: tuple) -> Any:
        """Run the call's coroutine up to its first wait. A coroutine that finishes without
        waiting (pure computation) is done here, with no timeout context or task: a timeout
        can only interrupt a wait anyway. Otherwise the rest runs in `_finish`."""
        started = time.perf_counter()
        try:
            coroutine = method(*args)
            yielded = coroutine.send(None)
        except StopIteration as done:
            self._component_done(run, stage, component.name, started)
            return done.value
        except Exception as exc:
            self._fail(run, stage, component, "exception", f"{type(exc).__name__}: {exc}", exc)
            self._component_done(run, stage, component.name, started)
            return _FAILED
        return Suspended(component, coroutine, yielded, started)

    async def _finish(self, run: _Run, stage: str, suspended: "Suspended") -> Any:
        component = suspended.component
        timeout_s = self._timeout_of(component)
        remaining = None if timeout_s is None else max(0.0, timeout_s - (time.perf_counter() - suspended.started))
        deadline = asyncio.timeout(remaining)
        try:
            async with deadline:
                return await suspended.resume()
        except Exception as exc:
            if deadline.expired():
                self._fail(run, stage, component, "timeout", f"timed out after {timeout_s}s")
            else:
                self._fail(run, stage, component, "exception", f"{type(exc).__name__}: {exc}", exc)
            return _FAILED
        finally:
            self._component_done(run, stage, component.name, suspended.started)

    def _guarded(self, run: _Run, stage: str, component: Component, function: Callable, *args) -> Any:
        """Call a synchronous part of a component (enable, update, select): its result, or _FAILED."""
        try:
            return function(*args)
        except Exception as exc:
            self._fail(run, stage, component, "exception", f"{type(exc).__name__}: {exc}", exc)
            return _FAILED

    def _columns_ok(self, run: _Run, stage: str, component: Component, n: int, columns: Any) -> bool:
        """Declared columns, one value per candidate? Otherwise skipped, never misapplied."""
        if columns is _FAILED:
            return False
        if not isinstance(columns, Mapping):
            self._fail(run, stage, component, "exception", f"returned {type(columns).__name__}, not columns")
            return False
        for name, values in columns.items():
            if name not in component.writes:
                self._fail(run, stage, component, "exception", f"wrote undeclared column {name!r}")
                return False
            if len(values) != n:
                self._fail(run, stage, component, "length_mismatch",
                           f"returned {len(values)} values of {name!r} for {n} candidates")
                return False
        return True

    def _timeout_of(self, component: Component) -> float | None:
        timeout_s = self.timeouts.get(component.name, component.timeout_s)
        return self.default_timeout_s if timeout_s is None else timeout_s

    def _result_size(self, query: Q) -> int:
        return self.result_size(query) if callable(self.result_size) else self.result_size

    # -- recording ---------------------------------------------------------------------------

    def _fail(self, run: _Run, stage: str, component: Component, kind: str, message: str,
              exc: BaseException | None = None) -> None:
        run.errors.append(ComponentError(stage, component.name, kind, message))
        metrics.inc(metrics.ERRORS, (self.name, stage, component.name, kind))
        self.logger.warning("pipeline %s request %s: %s/%s skipped (%s): %s", self.name, run.request_id, stage,
                            component.name, kind, message, exc_info=exc,
                            extra={"fields": {"request_id": run.request_id, "pipeline": self.name, "stage": stage,
                                              "component": component.name, "error_kind": kind}})

    def _component_done(self, run: _Run, stage: str, component: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        run.timings.append(StageTiming(stage, component, elapsed * 1000.0))
        metrics.observe(metrics.COMPONENT_LATENCY, (self.name, stage, component), elapsed)

    def _stage_done(self, run: _Run, stage: str, started: float, given: int, kept: int) -> None:
        elapsed = time.perf_counter() - started
        run.timings.append(StageTiming(stage, "", elapsed * 1000.0))
        metrics.observe(metrics.STAGE_LATENCY, (self.name, stage), elapsed)
        self._count(stage, "", given, kept, given - kept if stage in (FILTERS, POST_SELECTION_FILTERS) else 0)

    def _count(self, stage: str, component: str, given: int, kept: int, removed: int = 0) -> None:
        labels = (self.name, stage, component)
        if given:
            metrics.inc(metrics.CANDIDATES_IN, labels, given)
        if kept:
            metrics.inc(metrics.CANDIDATES_OUT, labels, kept)
        if removed:
            metrics.inc(metrics.CANDIDATES_REMOVED, labels, removed)
