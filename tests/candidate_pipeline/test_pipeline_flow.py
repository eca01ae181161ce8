"""The documented order and concurrency of a pipeline run, provenance of removed candidates,
truncation, request ids and side effects."""
from __future__ import annotations

import asyncio

from candidate_pipeline import Component, Pipeline, RemovedCandidate
from foryou.logs import request_id_var
from tests.candidate_pipeline.pipeline_fakes import (
    Cand, FakeFilter, FakeHydrator, FakeQueryHydrator, FakeScorer, FakeSource, Query, RecordResult, TopScore, ids,
)


def test_component_name_defaults_to_class_name():
    class UserFeatures(Component):
        pass

    class Named(Component):
        name = "custom"

    assert UserFeatures.name == "UserFeatures"
    assert Named().name == "custom"
    assert UserFeatures().enable(Query()) is True
    assert UserFeatures.timeout_s is None


async def test_stages_run_in_documented_order():
    trace: list[str] = []
    sink: list = []
    pipeline = Pipeline[Query, Cand](
        name="order",
        query_hydrators=[FakeQueryHydrator("qh1", {"a": 1}, trace=trace), FakeQueryHydrator("qh2", {"b": 2}, trace=trace)],
        sources=[FakeSource("src1", [1, 2], trace=trace), FakeSource("src2", [3], trace=trace)],
        hydrators=[FakeHydrator("hyd1", {"x": 1}, trace=trace), FakeHydrator("hyd2", {"y": 1}, trace=trace)],
        filters=[FakeFilter("flt1", set(), trace=trace), FakeFilter("flt2", set(), trace=trace)],
        scorers=[FakeScorer("sc1", lambda s, i: i, trace=trace), FakeScorer("sc2", lambda s, i: s, trace=trace)],
        selector=TopScore("sel", trace=trace),
        post_selection_hydrators=[FakeHydrator("phyd", {"z": 1}, trace=trace)],
        post_selection_filters=[FakeFilter("pflt", set(), trace=trace)],
        side_effects=[RecordResult("se", sink, trace=trace)],
    )
    result = await pipeline.execute(Query())
    assert "se" not in trace  # started, not awaited by the response
    await pipeline.drain_side_effects()
    assert trace == ["qh1", "qh2", "src1", "src2", "hyd1", "hyd2", "flt1", "flt2", "sc1", "sc2", "sel",
                     "phyd", "pflt", "se"]
    assert result.errors == []
    assert ids(result.selected) == [3, 2, 1]
    stage_timings = [t.stage for t in result.timings if t.component == ""]
    assert stage_timings == ["query_hydrators", "sources", "hydrators", "filters", "scorers", "selector",
                             "post_selection_hydrators", "post_selection_filters", "total"]
    assert {t.component for t in result.timings} >= {"qh1", "src2", "hyd1", "flt2", "sc1", "sel", "phyd", "pflt"}


async def test_query_hydrators_run_concurrently_and_merge_in_list_order():
    barrier = asyncio.Barrier(2)  # only passes when both hydrators are inside hydrate() at once
    second_done = asyncio.Event()

    async def wait_for_second():
        await barrier.wait()
        await second_done.wait()

    async def second_first():
        await barrier.wait()
        second_done.set()

    pipeline = Pipeline[Query, Cand](
        name="qh_parallel", default_timeout_s=2,
        query_hydrators=[FakeQueryHydrator("first", {"k": "first", "a": 1}, before=wait_for_second),
                         FakeQueryHydrator("second", {"k": "second", "b": 2}, before=second_first)],
        sources=[FakeSource("src", lambda q: [q.features["a"], q.features["b"]])],
    )
    result = await pipeline.execute(Query())
    assert result.errors == []
    # "second" finished first, but updates apply in list order: the later hydrator wins.
    assert result.query.features == {"k": "second", "a": 1, "b": 2}
    assert ids(result.selected) == [1, 2]  # sources see the hydrated query


async def test_sources_run_concurrently_and_concatenate_in_list_order():
    barrier = asyncio.Barrier(2)  # a sequential executor would block the first source forever
    pipeline = Pipeline[Query, Cand](
        name="src_parallel", default_timeout_s=2,
        sources=[FakeSource("slow_a", [1, 2], before=barrier.wait), FakeSource("slow_b", [3, 4], before=barrier.wait)],
    )
    result = await pipeline.execute(Query())
    assert result.errors == []
    assert ids(result.selected) == [1, 2, 3, 4]
    assert [c.source for c in result.selected] == ["slow_a", "slow_a", "slow_b", "slow_b"]


async def test_hydrators_run_concurrently_on_the_same_candidates_then_update_in_list_order():
    barrier = asyncio.Barrier(2)
    second_done = asyncio.Event()

    async def wait_for_second():
        await barrier.wait()
        await second_done.wait()

    async def second_first():
        await barrier.wait()
        second_done.set()

    first = FakeHydrator("first", {"color": "red", "a": 1}, before=wait_for_second)
    second = FakeHydrator("second", {"color": "blue", "b": 1}, before=second_first)
    pipeline = Pipeline[Query, Cand](name="hyd_parallel", default_timeout_s=2,
                                     sources=[FakeSource("src", [1, 2])], hydrators=[first, second])
    result = await pipeline.execute(Query())
    assert result.errors == []
    assert first.seen_tags == second.seen_tags == [{}, {}]  # neither saw the other's fields
    assert [c.tags for c in result.selected] == [{"color": "blue", "a": 1, "b": 1}] * 2


async def test_scorers_run_in_sequence_and_read_earlier_scores():
    pipeline = Pipeline[Query, Cand](
        name="scorers",
        sources=[FakeSource("src", [1, 4, 5])],
        scorers=[FakeScorer("base", lambda s, i: float(i)), FakeScorer("double_odd", lambda s, i: s * 2 if i % 2 else s)],
        selector=TopScore(),
    )
    result = await pipeline.execute(Query())
    assert [(c.id, c.score) for c in result.selected] == [(5, 10.0), (4, 4.0), (1, 2.0)]


async def test_removed_candidates_carry_the_filter_and_stage_that_removed_them():
    pipeline = Pipeline[Query, Cand](
        name="provenance",
        sources=[FakeSource("src", [1, 2, 3, 4, 5])],
        filters=[FakeFilter("drop_1", {1}), FakeFilter("drop_2_3", {2, 3}), FakeFilter("drop_1_again", {1})],
        post_selection_filters=[FakeFilter("drop_5", {5})],
    )
    result = await pipeline.execute(Query())
    assert ids(result.selected) == [4]
    assert [(r.candidate.id, r.removed_by, r.stage) for r in result.removed] == [
        (1, "drop_1", "filters"), (2, "drop_2_3", "filters"), (3, "drop_2_3", "filters"),
        (5, "drop_5", "post_selection_filters"),
    ]
    assert isinstance(result.removed[0], RemovedCandidate)
    assert ids(result.removed_by("drop_2_3")) == [2, 3]


async def test_selector_orders_and_result_size_truncates():
    source = FakeSource("src", list(range(10)))
    scorer = FakeScorer("by_id", lambda s, i: float(i))
    fixed = Pipeline[Query, Cand](name="size_int", sources=[source], scorers=[scorer], selector=TopScore(k=5),
                                  result_size=3)
    assert ids((await fixed.execute(Query())).selected) == [9, 8, 7]
    per_query = Pipeline[Query, Cand](name="size_fn", sources=[source], scorers=[scorer], selector=TopScore(),
                                      result_size=lambda q: q.user_id)
    assert ids((await per_query.execute(Query(user_id=4))).selected) == [9, 8, 7, 6]


async def test_disabled_components_are_skipped_without_error():
    trace: list[str] = []
    pipeline = Pipeline[Query, Cand](
        name="disabled",
        sources=[FakeSource("on", [1], trace=trace), FakeSource("off", [2], trace=trace, enabled=False),
                 FakeSource("switched_off", [3], trace=trace)],
        filters=[FakeFilter("drop_all", {1, 2, 3}, trace=trace)],
        side_effects=[RecordResult("effect", [], trace=trace)],
    )
    query = Query(disabled_components={"switched_off", "drop_all", "effect"})
    result = await pipeline.execute(query)
    await pipeline.drain_side_effects()
    assert trace == ["on"]
    assert ids(result.selected) == [1]
    assert result.errors == [] and result.removed == []
    # Without the per-request switches the same pipeline runs them.
    result = await pipeline.execute(Query())
    assert result.selected == [] and not result.failed("drop_all")


async def test_request_id_is_set_for_components_and_reset_after():
    source = FakeSource("src", [1])
    pipeline = Pipeline[Query, Cand](name="request_ids", sources=[source])
    given = await pipeline.execute(Query(), request_id="req-given")
    from_query = await pipeline.execute(Query(request_id="req-query"))
    generated = await pipeline.execute(Query())
    assert given.request_id == "req-given" and from_query.request_id == "req-query"
    assert generated.request_id and generated.request_id not in ("req-given", "req-query")
    assert source.seen_request_ids == ["req-given", "req-query", generated.request_id]
    assert request_id_var.get() == ""


async def test_side_effects_do_not_delay_the_response():
    release = asyncio.Event()
    sink: list = []
    pipeline = Pipeline[Query, Cand](name="side_effects", sources=[FakeSource("src", [1, 2])],
                                     side_effects=[RecordResult("slow_effect", sink, before=release.wait)])
    result = await pipeline.execute(Query(), request_id="req-se")
    assert ids(result.selected) == [1, 2]  # returned while the side effect is still blocked
    await asyncio.sleep(0)
    assert sink == []
    release.set()
    await pipeline.drain_side_effects()
    assert sink == [(result, "req-se")]  # it saw the returned result, under the request's id


async def test_side_effect_errors_never_reach_the_caller():
    sink: list = []
    pipeline = Pipeline[Query, Cand](
        name="side_effect_errors", sources=[FakeSource("src", [1])],
        side_effects=[RecordResult("broken", sink, error=RuntimeError("cache down")),
                      RecordResult("stuck", sink, before=lambda: asyncio.Event().wait(), timeout_s=0.01),
                      RecordResult("fine", sink)],
    )
    result = await pipeline.execute(Query())
    await pipeline.drain_side_effects()  # does not raise
    assert result.errors == []
    assert [r for r, _ in sink] == [result]  # only "fine" recorded
