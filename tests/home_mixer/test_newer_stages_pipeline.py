"""The newer ranking stages (tests/home_mixer/test_newer_stages.py) through the production
pipeline. Every expected number is worked out by hand in the comments, not by calling the code."""
from __future__ import annotations

import dataclasses
from typing import cast

import pytest

from candidate_pipeline import Pipeline, SideEffect, Source
from foryou.snowflake import now_ms
from tests.home_mixer.hm_helpers import batch, cand, ids, post_id, query, with_vectors
from home_mixer.candidates import CORE_FOUND, SCHEMA, PostBatch
from home_mixer.clients import PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.query import ScoredPostsQuery, UserFeatures


# == Through the production pipeline (build_pipeline's order), sources and Phoenix replaced by
# a fixed batch: filters, scorers, selector, post-selection filters and side effects are the
# real ones ===================================================================================

class FixedSource(Source[ScoredPostsQuery, PostBatch]):
    name = "FixedSource"
    writes = tuple(SCHEMA)

    def __init__(self, candidates: PostBatch) -> None:
        self.candidates = candidates

    async def get_candidates(self, query: ScoredPostsQuery) -> PostBatch:
        return self.candidates


class Recorder(SideEffect[ScoredPostsQuery, PostBatch]):
    name = "Recorder"

    def __init__(self) -> None:
        self.results: list = []

    async def run(self, query: ScoredPostsQuery, result) -> None:
        self.results.append(result)


def _world():
    """Viewer follows 11 and 12; 12 follows back. Content vectors in 3-d."""
    p = {label: post_id(60_000 * (i + 1), i) for i, label in enumerate(("p1", "p2", "p3", "p4", "p5", "p6"))}
    found = {"core_data": CORE_FOUND, "scored_at_ms": 1}
    rows = [
        cand(p["p1"], 11, in_network=True, predictions={"favorite": 1.0}, **found),
        cand(p["p2"], 12, in_network=True, predictions={"favorite": 0.8, "reply": 0.01}, **found),
        cand(p["p3"], 31, predictions={"favorite": 0.1}, in_reply_to_post_id=p["p1"], in_reply_to_user_id=11,
             conversation_id=p["p1"], **found),
        cand(p["p4"], 31, predictions={"favorite": 0.9}, **found),
        cand(p["p5"], 11, in_network=True, predictions={"favorite": 0.6}, **found),
        cand(p["p6"], 12, in_network=True, predictions={"favorite": 0.9}, **found),   # served a minute ago
    ]
    # p2 says what p1 says; p3 and p4 say one other thing, p5 and p6 a third.
    vectors = [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]
    features = UserFeatures(following=frozenset({11, 12}), mutual_follows=frozenset({12}), served_ids=(p["p6"],),
                            served_at_ms=(now_ms() - 60_000,))
    return p, with_vectors(batch(*rows), vectors), features


def _pipeline(candidates: PostBatch, recorder: Recorder) -> Pipeline:
    class Unused:
        timeout_s = 1.0
        cache = None
    # Stand-ins: the clients' calls are never made (the stages that call them are replaced below).
    real = build_pipeline(cast(ThunderClient, Unused()), cast(PhoenixClient, Unused()), None)
    return dataclasses.replace(
        real, query_hydrators=[], sources=[FixedSource(candidates)], hydrators=[],
        scorers=[s for s in real.scorers if s.name != "PhoenixScorer"], post_selection_hydrators=[],
        side_effects=[recorder])


async def _run(disabled: frozenset[str] = frozenset()):
    p, candidates, features = _world()
    recorder = Recorder()
    pipe = _pipeline(candidates, recorder)
    q = query(features, params={"top_k": 3, "result_size": 2}, disabled_components=disabled)
    result = await pipe.execute(q)
    await pipe.drain_side_effects()
    name = {v: k for k, v in p.items()}
    removed = {name[i]: r.removed_by for r in result.removed for i in ids(r.candidates)}
    return ([name[i] for i in ids(result.selected)], [name[i] for i in ids(recorder.results[0].not_selected)],
            removed, result)


async def test_pipeline_runs_the_newer_stages_in_order():
    # Weighted (+ offset 0.001): p1 0.5 * 1.0 = 0.501; p2 0.5 * 0.8 + 5 * 0.01 = 0.45, and
    # MutualFollowReplyBoost (12 follows back) + 15 * 0.01 -> 0.6 -> 0.601; p4 0.451; p5 0.301.
    # AuthorDiversity: p5 is author 11's second post -> 0.301 * 0.625 = 0.188125.
    # OutOfNetwork: p4 * 0.75 = 0.33825. AuthorColdStart: fewer than 16 posts, nothing.
    # Filters: p3 is a stranger's reply (OutOfNetworkReplyRepost), p6 was served
    # (PreviouslyServed, on a top request). TopKScore keeps max(3, 150): all four.
    # DPP over p2 0.601, p1 0.501, p4 0.33825, p5 0.188125: take p2 (best quality); p1 has
    # p2's vector (gain 0), p4 and p5 are orthogonal: take p4 (higher quality), then p5.
    # p1 is removed. Kept in score order: p2, p4, p5; result size 2: p5 is not selected.
    selected, not_selected, removed, result = await _run()
    assert selected == ["p2", "p4"] and not_selected == ["p5"]
    assert removed == {"p3": "OutOfNetworkReplyRepostFilter", "p6": "PreviouslyServedPostsFilter",
                       "p1": "DppDiversityFilter"}
    assert result.selected["score"].tolist() == pytest.approx([0.601, 0.33825])


async def test_pipeline_newer_stages_disabled_by_name():
    # No boost: p2 0.451 < p1 0.501, so the DPP takes p1 first and removes p2 instead.
    selected, not_selected, removed, _ = await _run(frozenset({"MutualFollowReplyBoostScorer"}))
    assert selected == ["p1", "p4"] and not_selected == ["p5"] and removed["p2"] == "DppDiversityFilter"
    # No DPP: TopKScore keeps top_k 3 by score (p2, p1, p4; p5 left out), result size 2 cuts p4.
    # Side effects get both: the result-size cut first, then what the selector left out.
    selected, not_selected, removed, _ = await _run(frozenset({"DppDiversityFilter"}))
    assert selected == ["p2", "p1"] and not_selected == ["p4", "p5"]
    assert "DppDiversityFilter" not in removed.values()
    # No reply/repost filter, no served filter: p3 and p6 reach scoring. p6: 0.451, author
    # 12's second post after p2 -> * 0.625 = 0.281875; p3: 0.051, author 31's second after p4
    # -> * 0.625 * 0.75 = 0.0239. p3 replies in p1's conversation: DedupConversation keeps
    # p1, the higher. DPP: p2; then p4 (best of the orthogonal ones); then p1 is spanned
    # (gain 0) and p6 beats p5 on the third direction. Kept: p2, p4, p6.
    selected, not_selected, removed, _ = await _run(
        frozenset({"OutOfNetworkReplyRepostFilter", "PreviouslyServedPostsFilter"}))
    assert selected == ["p2", "p4"] and not_selected == ["p6"]
    assert removed == {"p1": "DppDiversityFilter", "p3": "DedupConversationFilter", "p5": "DppDiversityFilter"}
