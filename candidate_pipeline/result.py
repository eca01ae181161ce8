"""What a pipeline run returns: the selected candidates plus what happened on the way."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Generic

from candidate_pipeline.components import C, Q


@dataclass
class RemovedCandidate(Generic[C]):
    candidate: C
    removed_by: str  # the filter's name
    stage: str  # "filters" | "post_selection_filters"


@dataclass
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
class PipelineResult(Generic[Q, C]):
    query: Q
    selected: list[C]
    removed: list[RemovedCandidate[C]]
    timings: list[StageTiming]
    errors: list[ComponentError]
    request_id: str

    def failed(self, component_name: str) -> bool:
        """Did this component error (exception, timeout or length mismatch)?"""
        return any(error.component == component_name for error in self.errors)

    def removed_by(self, filter_name: str) -> list[C]:
        """The candidates a given filter removed."""
        return [r.candidate for r in self.removed if r.removed_by == filter_name]
