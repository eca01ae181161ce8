"""The error policy: a failing part never fails the request."""
from __future__ import annotations

import asyncio
import logging

import pytest

import numpy as np

from candidate_pipeline import ComponentError
from tests.candidate_pipeline.pipeline_fakes import (
    FakeFilter, FakeHydrator, FakeQueryHydrator, FakeScorer, FakeSource, Query, TopScore, forever, ids, pipeline,
)

RAISES = {"error": RuntimeError("boom")}
HANGS = {"before": forever, "timeout_s": 0.02}


def _query_hydrators(bad):
    pipe = pipeline(
        name="err_qh",
        query_hydrators=[FakeQueryHydrator("good", {"a": 1}), FakeQueryHydrator("bad", {"b": 2}, **bad)],
        sources=[FakeSource("src", lambda q: sorted(q.features.values()))])
    return pipe, lambda result: ids(result.selected) == [1] and result.query.features == {"a": 1}


def _sources(bad):
    pipe = pipeline(name="err_src", sources=[FakeSource("good", [1, 2]), FakeSource("bad", [3], **bad)])
    return pipe, lambda result: ids(result.selected) == [1, 2]


def _hydrators(bad, stage="hydrators"):
    hydrators = [FakeHydrator("good", {"a": 1}), FakeHydrator("bad", {"b": 1}, **bad)]
    pipe = pipeline(name=f"err_{stage}", sources=[FakeSource("src", [1, 2])], **{stage: hydrators})
    return pipe, lambda result: (result.selected["a"].tolist() == [1, 1]
                                     and result.selected["b"].tolist() == [0, 0])


def _filters(bad, stage="filters"):
    # The failing filter lets its input through; the next filter still runs.
    filters = [FakeFilter("bad", {1}, **bad), FakeFilter("good", {2})]
    pipe = pipeline(name=f"err_{stage}", sources=[FakeSource("src", [1, 2, 3])], **{stage: filters})
    return pipe, lambda result: (ids(result.selected) == [1, 3]
                                     and [(ids(r.candidates), r.removed_by) for r in result.removed] == [([2], "good")])


def _scorers(bad):
    pipe = pipeline(
        name="err_scorers", sources=[FakeSource("src", [1, 2, 3])], selector=TopScore(),
        scorers=[FakeScorer("bad", lambda s, i: 100.0 - i, **bad), FakeScorer("good", lambda s, i: s + i)])
    return pipe, lambda result: list(result.selected.rows("id", "score")) == [(3, 3.0), (2, 2.0), (1, 1.0)]


STAGES = {
    "query_hydrators": _query_hydrators,
    "sources": _sources,
    "hydrators": _hydrators,
    "post_selection_hydrators": lambda bad: _hydrators(bad, "post_selection_hydrators"),
    "filters": _filters,
    "post_selection_filters": lambda bad: _filters(bad, "post_selection_filters"),
    "scorers": _scorers,
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("kind, bad", [("exception", RAISES), ("timeout", HANGS)])
async def test_a_failing_component_is_skipped_and_reported(stage, kind, bad):
    pipe, expected_outcome = STAGES[stage](bad)
    result = await pipe.execute(Query())
    assert expected_outcome(result)
    assert [(e.stage, e.component, e.kind) for e in result.errors] == [(stage, "bad", kind)]
    assert result.failed("bad") and not result.failed("good")


@pytest.mark.parametrize("stage", ["hydrators", "post_selection_hydrators"])
async def test_a_hydrator_returning_too_few_records_is_skipped(stage):
    hydrators = [FakeHydrator("short", {"short": 1}, drop=1), FakeHydrator("good", {"good": 1})]
    pipe = pipeline(name=f"short_{stage}", sources=[FakeSource("src", [1, 2, 3])], **{stage: hydrators})
    result = await pipe.execute(Query())
    assert result.selected["good"].tolist() == [1] * 3 and result.selected["short"].tolist() == [0] * 3
    assert result.errors == [ComponentError(stage, "short", "length_mismatch",
                                            "returned 2 values of 'short' for 3 candidates")]


async def test_a_scorer_returning_too_many_records_is_skipped():
    pipe = pipeline(
        name="long_scorer", sources=[FakeSource("src", [1, 2])],
        scorers=[FakeScorer("long", lambda s, i: 50.0, extra=1), FakeScorer("good", lambda s, i: s + i)])
    result = await pipe.execute(Query())
    assert result.selected["score"].tolist() == [1.0, 2.0]
    assert [(e.stage, e.component, e.kind) for e in result.errors] == [("scorers", "long", "length_mismatch")]


async def test_a_failing_selector_leaves_the_candidates_as_they_were():
    pipe = pipeline(name="err_selector", sources=[FakeSource("src", [1, 2, 3])],
                                     selector=TopScore("picky", error=ValueError("no")), result_size=2)
    result = await pipe.execute(Query())
    assert ids(result.selected) == [1, 2]
    assert [(e.stage, e.component, e.kind) for e in result.errors] == [("selector", "picky", "exception")]


async def test_a_filter_returning_something_else_passes_its_input_through():
    class Confused(FakeFilter):
        async def filter(self, query, candidates):
            return candidates

    pipe = pipeline(name="err_filter_type", sources=[FakeSource("src", [1, 2])],
                                     filters=[Confused("confused", set())])
    result = await pipe.execute(Query())
    assert ids(result.selected) == [1, 2]
    assert result.errors == [ComponentError("filters", "confused", "exception", "returned CandBatch, not a bool keep mask")]


async def test_a_filter_mask_of_the_wrong_length_passes_its_input_through():
    class Short(FakeFilter):
        async def filter(self, query, candidates):
            return np.ones(len(candidates) - 1, dtype=bool)

    pipe = pipeline(name="err_filter_len", sources=[FakeSource("src", [1, 2])], filters=[Short("short", set())])
    result = await pipe.execute(Query())
    assert ids(result.selected) == [1, 2]
    assert [(e.component, e.kind) for e in result.errors] == [("short", "length_mismatch")]


async def test_a_raising_enable_skips_the_component():
    class Flaky(FakeSource):
        def enable(self, query):
            raise KeyError("param")

    flaky = Flaky("flaky", [2])
    pipe = pipeline(name="err_enable", sources=[FakeSource("good", [1]), flaky])
    result = await pipe.execute(Query())
    assert ids(result.selected) == [1] and flaky.calls == 0
    assert [(e.stage, e.component, e.kind) for e in result.errors] == [("sources", "flaky", "exception")]


async def test_timeouts_come_from_config_then_component_then_pipeline_default():
    pipe = pipeline(
        name="timeouts", default_timeout_s=0.02, timeouts={"configured": 0.02},
        sources=[FakeSource("by_default", [1], before=forever),
                 FakeSource("configured", [2], before=forever, timeout_s=60),
                 FakeSource("patient", [3], before=lambda: asyncio.sleep(0.05), timeout_s=5)],
    )
    result = await pipe.execute(Query())
    assert ids(result.selected) == [3]
    assert {(e.component, e.kind) for e in result.errors} == {("by_default", "timeout"), ("configured", "timeout")}


async def test_a_timeout_raised_by_the_component_itself_is_an_exception():
    pipe = pipeline(name="own_timeout", sources=[FakeSource("rpc", [1], error=TimeoutError("rpc"))])
    result = await pipe.execute(Query())
    assert [(e.component, e.kind) for e in result.errors] == [("rpc", "exception")]


async def test_failures_are_logged_with_request_id_pipeline_stage_and_component(caplog):
    pipe = pipeline(name="logged", sources=[FakeSource("bad", [1], error=RuntimeError("boom"))])
    with caplog.at_level(logging.WARNING, logger="candidate_pipeline"):
        await pipe.execute(Query(), request_id="req-log")
    [record] = [r for r in caplog.records if r.name.startswith("candidate_pipeline")]
    assert record.fields == {"request_id": "req-log", "pipeline": "logged", "stage": "sources",
                             "component": "bad", "error_kind": "exception"}
    assert "req-log" in record.getMessage() and "boom" in record.getMessage()
    assert record.exc_info is not None


class _RaisingEnable(FakeFilter):
    def enable(self, query) -> bool:
        raise RuntimeError("enable boom")


class _NotAResult(FakeFilter):
    async def filter(self, query, candidates):
        return candidates


@pytest.mark.parametrize("stage", ["filters", "post_selection_filters"])
@pytest.mark.parametrize("make_bad", [
    lambda: FakeFilter("safety", set(), **RAISES), lambda: FakeFilter("safety", set(), **HANGS),
    lambda: _RaisingEnable("safety", set()), lambda: _NotAResult("safety", set()),
], ids=["raises", "times_out", "enable_raises", "bad_result"])
async def test_a_failing_fail_closed_filter_removes_everything_in_its_name(stage, make_bad):
    bad = make_bad()
    bad.fail_closed = True
    after = FakeFilter("after", {2})
    pipe = pipeline(name=f"closed_{stage}", sources=[FakeSource("src", [1, 2, 3])],
                                     **{stage: [FakeFilter("before", {1}), bad, after]})
    result = await pipe.execute(Query())
    assert len(result.selected) == 0
    assert [(ids(r.candidates), r.removed_by) for r in result.removed] == [([1], "before"), ([2, 3], "safety")]
    assert [e.component for e in result.errors] == ["safety"]


async def test_a_disabled_or_switched_off_fail_closed_filter_removes_nothing():
    off = FakeFilter("safety", {1}, enabled=False)
    off.fail_closed = True
    pipe = pipeline(name="closed_off", sources=[FakeSource("src", [1, 2])], filters=[off])
    assert ids((await pipe.execute(Query())).selected) == [1, 2]
