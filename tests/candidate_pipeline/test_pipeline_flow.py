"""The documented order and concurrency of a pipeline run, provenance of removed candidates,
truncation, request ids and side effects."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from candidate_pipeline import ColumnOrderError, Component, Removed
from foryou.logs import request_id_var
from tests.candidate_pipeline.pipeline_fakes import (
    FakeFilter, FakeHydrator, FakeQueryHydrator, FakeScorer, FakeSource, Query, RecordResult, TopScore,
    ids, pipeline,
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
    pipe = pipeline(
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
    result = await pipe.execute(Query())
    assert "se" not in trace  # started, not awaited by the response
    await pipe.drain_side_effects()
    assert trace == ["qh1", "qh2", "src1", "src2", "hyd1", "hyd2", "flt1", "flt2", "sc1", "sc2", "sel",
                     "phyd", "pflt", "se"]
    assert result.errors == []
    assert ids(result.selected) == [3, 2, 1]
    stage_timings = [t.stage for t in result.timings if t.component == ""]
    assert stage_timings == ["query_hydrators", "sources", "hydrators", "filters", "scorers", "selector",
                             "post_selection_hydrators", "post_selection_filters", "total"]
    assert {t.component for t in result.timings} >= {"qh1", "src2", "hyd1", "flt2", "sc1", "sel", "phyd", "pflt"}


def second_finishes_first() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """`before` hooks of two components: both must be inside their call at once (a barrier
    that a sequential executor never passes), and the second finishes first."""
    barrier = asyncio.Barrier(2)
    second_done = asyncio.Event()

    async def wait_for_second() -> None:
        await barrier.wait()
        await second_done.wait()

    async def second_first() -> None:
        await barrier.wait()
        second_done.set()
    return wait_for_second, second_first


async def test_query_hydrators_run_concurrently_and_merge_in_list_order():
    wait_for_second, second_first = second_finishes_first()
    pipe = pipeline(
        name="qh_parallel", default_timeout_s=2,
        query_hydrators=[FakeQueryHydrator("first", {"k": "first", "a": 1}, before=wait_for_second),
                         FakeQueryHydrator("second", {"k": "second", "b": 2}, before=second_first)],
        sources=[FakeSource("src", lambda q: [q.features["a"], q.features["b"]])],
    )
    result = await pipe.execute(Query())
    assert result.errors == []
    # "second" finished first, but updates apply in list order: the later hydrator wins.
    assert result.query.features == {"k": "second", "a": 1, "b": 2}
    assert ids(result.selected) == [1, 2]  # sources see the hydrated query


async def test_sources_run_concurrently_and_concatenate_in_list_order():
    barrier = asyncio.Barrier(2)  # a sequential executor would block the first source forever
    pipe = pipeline(
        name="src_parallel", default_timeout_s=2,
        sources=[FakeSource("slow_a", [1, 2], before=barrier.wait), FakeSource("slow_b", [3, 4], before=barrier.wait)],
    )
    result = await pipe.execute(Query())
    assert result.errors == []
    assert ids(result.selected) == [1, 2, 3, 4]
    assert result.selected["source"].tolist() == ["slow_a", "slow_a", "slow_b", "slow_b"]


async def test_hydrators_run_concurrently_on_the_same_candidates_then_update_in_list_order():
    wait_for_second, second_first = second_finishes_first()
    first = FakeHydrator("first", {"color": 1, "a": 1}, before=wait_for_second)
    second = FakeHydrator("second", {"color": 2, "b": 1}, before=second_first)
    pipe = pipeline(name="hyd_parallel", default_timeout_s=2, sources=[FakeSource("src", [1, 2])],
                    hydrators=[first, second])
    result = await pipe.execute(Query())
    assert result.errors == []
    assert first.seen["color"] == second.seen["color"] == [0, 0]  # neither saw the other's columns
    assert first.seen["b"] == second.seen["a"] == [0, 0]
    # Applied in list order: the later hydrator's "color" wins.
    assert [(c, a, b) for c, a, b in result.selected.rows("color", "a", "b")] == [(2, 1, 1)] * 2


async def test_a_hydrator_reading_another_hydrators_column_runs_after_it():
    trace: list[str] = []
    writer = FakeHydrator("writer", {"a": 7}, trace=trace, before=lambda: asyncio.sleep(0.01))
    reader = FakeHydrator("reader", {"b": 1}, reads=("a",), trace=trace)
    independent = FakeHydrator("independent", {"x": 1}, trace=trace)
    pipe = pipeline(name="hyd_waves", sources=[FakeSource("src", [1, 2])],
                    hydrators=[writer, reader, independent])
    result = await pipe.execute(Query())
    assert result.errors == []
    assert trace == ["writer", "independent", "reader"]  # the second wave waits for the first
    assert reader.seen["a"] == [7, 7] and independent.seen["a"] == [0, 0]


async def test_query_hydrators_in_waves_see_what_an_earlier_one_wrote():
    context = FakeQueryHydrator("context", {"raw": 3}, writes=("features",))
    features = FakeQueryHydrator("features", {"derived": 1}, reads=("features",))
    pipe = pipeline(name="qh_waves", query_hydrators=[features, context][::-1])
    result = await pipe.execute(Query())
    assert features.seen_features == {"raw": 3}
    assert result.query.features == {"raw": 3, "derived": 1}


def test_reading_a_column_nobody_wrote_before_fails_at_construction_naming_both():
    with pytest.raises(ColumnOrderError, match=r"flt \(filters\) reads column 'x', which no component "
                                               r"before it writes; phyd writes it later"):
        pipeline(name="bad_order", sources=[FakeSource("src", [1])],
                 filters=[FakeFilter("flt", set(), reads=("x",))],
                 post_selection_hydrators=[FakeHydrator("phyd", {"x": 1})])
    with pytest.raises(ColumnOrderError, match=r"early \(hydrators\) reads column 'a'.*; late writes it later"):
        pipeline(name="bad_wave", sources=[FakeSource("src", [1])],
                 hydrators=[FakeHydrator("early", {"b": 1}, reads=("a",)), FakeHydrator("late", {"a": 1})])
    with pytest.raises(ColumnOrderError, match=r"'color', which no component before it writes$"):
        pipeline(name="never", sources=[FakeSource("src", [1])], selector=TopScore(reads=("color",)))


async def test_a_column_a_component_did_not_declare_is_refused():
    sneaky = FakeHydrator("sneaky", {"a": 1, "b": 2}, writes=("a",))
    pipe = pipeline(name="undeclared", sources=[FakeSource("src", [1])], hydrators=[sneaky])
    result = await pipe.execute(Query())
    assert result.selected["a"].tolist() == [0]
    assert [(e.component, e.kind, e.message) for e in result.errors] == [
        ("sneaky", "exception", "wrote undeclared column 'b'")]


async def test_scorers_run_in_sequence_and_read_earlier_scores():
    pipe = pipeline(
        name="scorers",
        sources=[FakeSource("src", [1, 4, 5])],
        scorers=[FakeScorer("base", lambda s, i: float(i)), FakeScorer("double_odd", lambda s, i: s * 2 if i % 2 else s)],
        selector=TopScore(),
    )
    result = await pipe.execute(Query())
    assert list(result.selected.rows("id", "score")) == [(5, 10.0), (4, 4.0), (1, 2.0)]


async def test_removed_candidates_carry_the_filter_and_stage_that_removed_them():
    pipe = pipeline(
        name="provenance",
        sources=[FakeSource("src", [1, 2, 3, 4, 5])],
        filters=[FakeFilter("drop_1", {1}), FakeFilter("drop_2_3", {2, 3}), FakeFilter("drop_1_again", {1})],
        post_selection_filters=[FakeFilter("drop_5", {5})],
    )
    result = await pipe.execute(Query())
    assert ids(result.selected) == [4]
    assert [(ids(r.candidates), r.removed_by, r.stage) for r in result.removed] == [
        ([1], "drop_1", "filters"), ([2, 3], "drop_2_3", "filters"), ([5], "drop_5", "post_selection_filters"),
    ]  # drop_1_again removed nothing: no entry
    assert isinstance(result.removed[0], Removed)
    assert [ids(b) for b in result.removed_by("drop_2_3")] == [[2, 3]]
    assert result.removed[0].candidates["source"].tolist() == ["src"]  # every column comes along


async def test_selector_orders_and_result_size_truncates():
    source = FakeSource("src", list(range(10)))
    scorer = FakeScorer("by_id", lambda s, i: float(i))
    fixed = pipeline(name="size_int", sources=[source], scorers=[scorer], selector=TopScore(k=5),
                                  result_size=3)
    result = await fixed.execute(Query())
    assert ids(result.selected) == [9, 8, 7]
    # Cut by the result size (6, 5), then by the selector's top 5 (4 .. 0): both reach side effects.
    assert sorted(ids(result.not_selected)) == [0, 1, 2, 3, 4, 5, 6]
    assert ids(result.not_selected)[:2] == [6, 5]
    per_query = pipeline(name="size_fn", sources=[source], scorers=[scorer], selector=TopScore(),
                                      result_size=lambda q: q.user_id)
    assert ids((await per_query.execute(Query(user_id=4))).selected) == [9, 8, 7, 6]


async def test_disabled_components_are_skipped_without_error():
    trace: list[str] = []
    pipe = pipeline(
        name="disabled",
        sources=[FakeSource("on", [1], trace=trace), FakeSource("off", [2], trace=trace, enabled=False),
                 FakeSource("switched_off", [3], trace=trace)],
        filters=[FakeFilter("drop_all", {1, 2, 3}, trace=trace)],
        side_effects=[RecordResult("effect", [], trace=trace)],
    )
    query = Query(disabled_components={"switched_off", "drop_all", "effect"})
    result = await pipe.execute(query)
    await pipe.drain_side_effects()
    assert trace == ["on"]
    assert ids(result.selected) == [1]
    assert result.errors == [] and result.removed == []
    # Without the per-request switches the same pipeline runs them.
    result = await pipe.execute(Query())
    assert len(result.selected) == 0 and not result.failed("drop_all")


async def test_request_id_is_set_for_components_and_reset_after():
    source = FakeSource("src", [1])
    pipe = pipeline(name="request_ids", sources=[source])
    given = await pipe.execute(Query(), request_id="req-given")
    from_query = await pipe.execute(Query(request_id="req-query"))
    generated = await pipe.execute(Query())
    assert given.request_id == "req-given" and from_query.request_id == "req-query"
    assert generated.request_id and generated.request_id not in ("req-given", "req-query")
    assert source.seen_request_ids == ["req-given", "req-query", generated.request_id]
    assert request_id_var.get() == ""


async def test_side_effects_do_not_delay_the_response():
    release = asyncio.Event()
    sink: list = []
    pipe = pipeline(name="side_effects", sources=[FakeSource("src", [1, 2])],
                    side_effects=[RecordResult("slow_effect", sink, before=release.wait)])
    result = await pipe.execute(Query(), request_id="req-se")
    assert ids(result.selected) == [1, 2]  # returned while the side effect is still blocked
    await asyncio.sleep(0)
    assert sink == []
    release.set()
    await pipe.drain_side_effects()
    assert sink == [(result, "req-se")]  # it saw the returned result, under the request's id


async def test_side_effect_errors_never_reach_the_caller():
    sink: list = []
    pipe = pipeline(
        name="side_effect_errors", sources=[FakeSource("src", [1])],
        side_effects=[RecordResult("broken", sink, error=RuntimeError("cache down")),
                      RecordResult("stuck", sink, before=lambda: asyncio.Event().wait(), timeout_s=0.01),
                      RecordResult("fine", sink)],
    )
    result = await pipe.execute(Query())
    await pipe.drain_side_effects()  # does not raise
    assert result.errors == []
    assert [r for r, _ in sink] == [result]  # only "fine" recorded
