"""A reusable candidate pipeline: the framework HomeMixer's For You pipeline is built on.

A pipeline is a list of components of seven kinds, generic over a query type Q and a batch
type B: the candidates as one columnar batch (batch.py, a `ColumnBatch` subclass naming its
columns). Components declare the columns they read and write (components.py). `Pipeline.execute(query)` (pipeline.py, the whole flow in one
method) runs them in this order:

1. query hydrators, in parallel; each result is merged into the query by its `update`, in
   list order;
2. sources, in parallel; their candidates are concatenated in list order;
3. hydrators, in parallel over the same batch (a hydrator reading a column another one of the
   stage writes runs in a later wave); each returns its columns, applied in list order;
4. filters, one after another; each returns a keep mask, and what it removed is kept with its name;
5. scorers, one after another (a later scorer reads the earlier score columns);
6. the selector (row positions, best first); what it leaves out is `not_selected`;
7. post-selection hydrators and post-selection filters, as in 3 and 4;
8. truncation to `result_size`; side effects are started as tasks and the result returned
   without waiting for them (`drain_side_effects()` waits, for tests and shutdown).

A component is skipped when `enable(query)` is false or its `name` is in the query's
`disabled_components`. Failures never fail the request: a component that raises or runs past
its timeout (`Pipeline.timeouts[name]`, else `component.timeout_s`, else
`Pipeline.default_timeout_s`) is skipped and reported in `PipelineResult.errors`, in the
`foryou_pipeline_errors_total` metric and in a log line carrying the request id; a hydrator or
scorer returning columns of another length (or a column it did not declare) is skipped; a raising filter
lets its input through, unless it is `fail_closed` (a safety filter), when it removes all of it; side-effect errors are
logged and counted only. At construction a component reading a column nothing before it writes
is a ColumnOrderError naming both. Latencies and candidate
counts per pipeline, stage and component go to Prometheus (metrics.py) and to
`PipelineResult.timings`.
"""
from candidate_pipeline.batch import Column, ColumnBatch
from candidate_pipeline.components import (
    B, Columns, Component, Filter, Hydrator, Q, QueryHydrator, Scorer, Selector, SideEffect, Source,
)
from candidate_pipeline.ordering import ColumnOrderError
from candidate_pipeline.pipeline import Pipeline
from candidate_pipeline.result import ComponentError, PipelineResult, Removed, StageTiming

__all__ = [
    "B", "Q", "Column", "ColumnBatch", "Columns", "Component", "QueryHydrator", "Source", "Hydrator", "Filter",
    "Scorer", "Selector", "SideEffect", "Pipeline", "ColumnOrderError", "PipelineResult", "Removed",
    "StageTiming", "ComponentError",
]
