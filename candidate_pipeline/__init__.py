"""A reusable candidate pipeline: the framework HomeMixer's For You pipeline is built on.

A pipeline is a list of components of seven kinds, generic over a query type Q and a candidate
type C (see components.py). `Pipeline.execute(query)` (pipeline.py, the whole flow in one
method) runs them in this order:

1. query hydrators, in parallel; each result is merged into the query by its `update`, in
   list order;
2. sources, in parallel; their candidates are concatenated in list order;
3. hydrators, in parallel over the same candidates; each returns one record per candidate and
   the `update`s are applied in list order;
4. filters, one after another; each removed candidate is kept with the filter that removed it;
5. scorers, one after another (a later scorer reads the earlier scores);
6. the selector (ordering and top-K);
7. post-selection hydrators and post-selection filters, as in 3 and 4;
8. truncation to `result_size`; side effects are started as tasks and the result returned
   without waiting for them (`drain_side_effects()` waits, for tests and shutdown).

A component is skipped when `enable(query)` is false or its `name` is in the query's
`disabled_components`. Failures never fail the request: a component that raises or runs past
its timeout (`Pipeline.timeouts[name]`, else `component.timeout_s`, else
`Pipeline.default_timeout_s`) is skipped and reported in `PipelineResult.errors`, in the
`foryou_pipeline_errors_total` metric and in a log line carrying the request id; a hydrator or
scorer returning a different number of records than it was given is skipped; a raising filter
lets its input through, unless it is `fail_closed` (a safety filter), when it removes all of it; side-effect errors are logged and counted only. Latencies and candidate
counts per pipeline, stage and component go to Prometheus (metrics.py) and to
`PipelineResult.timings`.
"""
from candidate_pipeline.components import (
    C, Component, Filter, FilterResult, Hydrator, Q, QueryHydrator, Scorer, Selector, SideEffect, Source,
)
from candidate_pipeline.pipeline import Pipeline
from candidate_pipeline.result import ComponentError, PipelineResult, RemovedCandidate, StageTiming

__all__ = [
    "C", "Q", "Component", "QueryHydrator", "Source", "Hydrator", "Filter", "FilterResult", "Scorer",
    "Selector", "SideEffect", "Pipeline", "PipelineResult", "RemovedCandidate", "StageTiming", "ComponentError",
]
