"""Prometheus metrics of every pipeline run, labelled by pipeline, stage and component
(component "" = the whole stage).

A request records a few dozen observations; through prometheus_client's metric objects each
costs a lock and several method calls, which was most of the framework's own time. So the
pipeline adds to plain dicts here (one process, one event loop: no lock needed) and a
registered collector turns them into the usual counter and histogram families when scraped.
The metric names and labels are those of ordinary prometheus_client metrics."""
from __future__ import annotations

import bisect
from collections import defaultdict

import prometheus_client
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

COMPONENT_LATENCY = "foryou_pipeline_component_seconds"
STAGE_LATENCY = "foryou_pipeline_stage_seconds"
CANDIDATES_IN = "foryou_pipeline_candidates_in"
CANDIDATES_OUT = "foryou_pipeline_candidates_out"
CANDIDATES_REMOVED = "foryou_pipeline_candidates_removed"
ERRORS = "foryou_pipeline_errors"

_HELP = {
    COMPONENT_LATENCY: ("Latency of one pipeline component", ("pipeline", "stage", "component")),
    STAGE_LATENCY: ("Latency of a pipeline stage (stage 'total' = the whole run)", ("pipeline", "stage")),
    CANDIDATES_IN: ("Candidates given to a component or stage", ("pipeline", "stage", "component")),
    CANDIDATES_OUT: ("Candidates coming out of a component or stage", ("pipeline", "stage", "component")),
    CANDIDATES_REMOVED: ("Candidates removed by a filter", ("pipeline", "stage", "component")),
    ERRORS: ("Component failures (kind: exception, timeout, length_mismatch)",
             ("pipeline", "stage", "component", "kind")),
}

# name -> labels -> value / [bucket counts..., sum]
_counters: dict[str, dict[tuple[str, ...], float]] = defaultdict(lambda: defaultdict(float))
_histograms: dict[str, dict[tuple[str, ...], list[float]]] = defaultdict(dict)


def inc(name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
    _counters[name][labels] += amount


def observe(name: str, labels: tuple[str, ...], seconds: float) -> None:
    series = _histograms[name].get(labels)
    if series is None:
        series = _histograms[name][labels] = [0.0] * (len(BUCKETS) + 2)  # buckets, +Inf, sum
    series[bisect.bisect_left(BUCKETS, seconds)] += 1
    series[-1] += seconds


class _Collector:
    def collect(self):
        for name, by_labels in list(_counters.items()):
            help_text, label_names = _HELP[name]
            family = CounterMetricFamily(name, help_text, labels=label_names)
            for labels, value in list(by_labels.items()):
                family.add_metric(list(labels), value)
            yield family
        for name, by_labels in list(_histograms.items()):
            help_text, label_names = _HELP[name]
            family = HistogramMetricFamily(name, help_text, labels=label_names)
            for labels, series in list(by_labels.items()):
                cumulative, buckets = 0.0, []
                for bound, count in zip((*BUCKETS, float("inf")), series[:-1]):
                    cumulative += count
                    buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
                family.add_metric(list(labels), buckets, series[-1])
            yield family

    def describe(self):
        return []  # names are known only once recorded; describe nothing so registration never clashes


prometheus_client.REGISTRY.register(_Collector())
