"""Latency and candidate counts per pipeline, stage and component, and errors by kind, in the
process's Prometheus registry."""
from __future__ import annotations

from prometheus_client import REGISTRY

from tests.candidate_pipeline.pipeline_fakes import FakeFilter, FakeHydrator, FakeScorer, FakeSource, Query, RecordResult, TopScore, forever, pipeline


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_latency_counts_and_errors_are_recorded_per_pipeline_stage_and_component():
    pipe = pipeline(
        name="metrics_pipeline",
        sources=[FakeSource("src_a", [1, 2, 3]), FakeSource("src_b", [4, 5]),
                 FakeSource("src_hung", [6], before=forever, timeout_s=0.01)],
        hydrators=[FakeHydrator("hyd", {"a": 1}), FakeHydrator("hyd_short", {"short": 1}, drop=1)],
        filters=[FakeFilter("drop_two", {1, 2}), FakeFilter("flt_broken", set(), error=RuntimeError("x"))],
        scorers=[FakeScorer("scorer", lambda s, i: float(i))],
        selector=TopScore("top"),
        side_effects=[RecordResult("effect_broken", [], error=RuntimeError("y"))],
        result_size=2,
    )
    for _ in range(2):
        await pipe.execute(Query())
    await pipe.drain_side_effects()

    labels = {"pipeline": "metrics_pipeline"}
    for stage, component in [("sources", "src_a"), ("sources", "src_hung"), ("hydrators", "hyd"),
                             ("filters", "drop_two"), ("scorers", "scorer"), ("selector", "top"),
                             ("side_effects", "effect_broken")]:
        assert sample("foryou_pipeline_component_seconds_count", **labels, stage=stage, component=component) == 2
    for stage in ["query_hydrators", "sources", "hydrators", "filters", "scorers", "selector", "total"]:
        assert sample("foryou_pipeline_stage_seconds_count", **labels, stage=stage) == 2

    def count(direction: str, stage: str, component: str) -> float:
        return sample(f"foryou_pipeline_candidates_{direction}_total", **labels, stage=stage, component=component)

    assert count("out", "sources", "src_a") == 6 and count("out", "sources", "src_b") == 4
    assert count("out", "sources", "") == 10
    assert (count("in", "filters", "drop_two"), count("out", "filters", "drop_two"),
            count("removed", "filters", "drop_two")) == (10, 6, 4)
    assert (count("in", "filters", ""), count("out", "filters", ""), count("removed", "filters", "")) == (10, 6, 4)
    assert count("in", "scorers", "scorer") == 6
    assert (count("in", "total", ""), count("out", "total", "")) == (6, 4)  # truncated to 2 per request

    def errors(stage: str, component: str, kind: str) -> float:
        return sample("foryou_pipeline_errors_total", **labels, stage=stage, component=component, kind=kind)

    assert errors("sources", "src_hung", "timeout") == 2
    assert errors("hydrators", "hyd_short", "length_mismatch") == 2
    assert errors("filters", "flt_broken", "exception") == 2
    assert errors("side_effects", "effect_broken", "exception") == 2
    assert errors("sources", "src_a", "exception") == 0
