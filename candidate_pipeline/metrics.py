"""Prometheus metrics of every pipeline run, labelled by pipeline, stage and component
(component "" = the whole stage). Label children are cached: `.labels()` costs more than
the observation itself, and the label sets are few and fixed."""
from __future__ import annotations

import functools

import prometheus_client

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

COMPONENT_LATENCY = prometheus_client.Histogram(
    "foryou_pipeline_component_seconds", "Latency of one pipeline component",
    ["pipeline", "stage", "component"], buckets=_BUCKETS,
)
STAGE_LATENCY = prometheus_client.Histogram(
    "foryou_pipeline_stage_seconds", "Latency of a pipeline stage (stage 'total' = the whole run)",
    ["pipeline", "stage"], buckets=_BUCKETS,
)
CANDIDATES_IN = prometheus_client.Counter(
    "foryou_pipeline_candidates_in", "Candidates given to a component or stage",
    ["pipeline", "stage", "component"],
)
CANDIDATES_OUT = prometheus_client.Counter(
    "foryou_pipeline_candidates_out", "Candidates coming out of a component or stage",
    ["pipeline", "stage", "component"],
)
CANDIDATES_REMOVED = prometheus_client.Counter(
    "foryou_pipeline_candidates_removed", "Candidates removed by a filter",
    ["pipeline", "stage", "component"],
)
ERRORS = prometheus_client.Counter(
    "foryou_pipeline_errors", "Component failures (kind: exception, timeout, length_mismatch)",
    ["pipeline", "stage", "component", "kind"],
)


@functools.cache
def child(metric, *labels: str):
    """The labelled child of `metric`, created once."""
    return metric.labels(*labels)
