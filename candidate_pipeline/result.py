"""What a pipeline run returns: the selected candidates plus what happened on the way."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from candidate_pipeline.components import B, Q


@dataclass(slots=True)
class Removed(Generic[B]):
    """The candidates one filter removed (a batch), with the filter and stage."""
    candidates: B
    removed_by: str  # the filter's name
    stage: str  # "filters" | "post_selection_filters"


@dataclass(slots=True)
class StageTiming:
    stage: str
    component: str  # "" = the whole stage
    duration_ms: float


@dataclass
class ComponentError:
    stage: str
    component: str
    kind: str  # "exception" | "timeout" | "length_mismatch"
    message: str


@dataclass
class PipelineResult(Generic[Q, B]):
    query: Q
    selected: B
    removed: list[Removed[B]]
    timings: list[StageTiming]
    errors: list[ComponentError]
    request_id: str
    # Ranked, not removed by a filter, but cut by the selector or the result size.
    not_selected: B | None = None

    def failed(self, component_name: str) -> bool:
        """Did this component error (exception, timeout or length mismatch)?"""
        return any(error.component == component_name for error in self.errors)

    def removed_by(self, filter_name: str) -> list[B]:
        """The batches a given filter removed (one per run of that filter)."""
        return [r.candidates for r in self.removed if r.removed_by == filter_name]
