"""The explorer's view models on hand-made responses (no services needed)."""
from __future__ import annotations

from explorer import views
from foryou_protos import home_mixer_pb2


def post(post_id: int, score: float, weighted: float, diversity: float = 1.0, oon: float = 1.0, in_network=True,
         **predictions) -> home_mixer_pb2.ScoredPost:
    return home_mixer_pb2.ScoredPost(
        post_id=post_id, author_id=post_id * 10, score=score, in_network=in_network, author_screen_names=[f"a{post_id}"],
        predictions=predictions or {"favorite": 0.5},
        components=home_mixer_pb2.ScoreComponents(weighted_score=weighted, diversity_multiplier=diversity,
                                                  out_of_network_factor=oon))


W = views.DEFAULT_WEIGHTS


def test_explain_names_the_factor_that_separates_neighbours():
    a = post(1, 0.9, 0.9, favorite=0.8, reply=0.1)
    b = post(2, 0.5, 0.5, favorite=0.2, reply=0.1)
    assert views.explain(a, b, W) == ("above the next post: higher weighted score (0.9 vs 0.5), "
                                      "mostly a higher favorite (0.800 vs 0.200, weight 0.5)")
    repeated = post(3, 0.25, 0.5, diversity=0.5)
    assert "its author is less repeated above (diversity ×1.00 vs ×0.50)" in views.explain(b, repeated, W)
    out = post(4, 0.45, 0.6, oon=0.75, in_network=False)
    text = views.explain(b, out, W)
    assert "out-of-network factor ×1.00 vs ×0.75 (in-network vs out-of-network)" in text
    assert text.endswith("despite a lower weighted score")
    negative = views.explain(post(5, 0.6, 0.6, report=0.1), post(6, 0.4, 0.4, report=0.2), W)
    assert "mostly a lower report (0.100 vs 0.200, weight -234)" in negative
    assert views.explain(a, None, W) == "last post of the feed"
    assert views.explain(post(7, 0.5, 0.5), post(8, 0.5, 0.5), W).startswith("same score")


def test_cards_carry_bars_components_and_a_boost_beyond_the_three_factors():
    response = home_mixer_pb2.ScoredPostsResponse(scored_posts=[
        post(1, 1.0, 0.5, favorite=0.9, report=0.6, dwell_time=30.0, click=0.1, reply=0.2, share=0.3, quote=0.05),
        post(2, 0.3, 0.4, oon=0.75, in_network=False)])
    first, second = views.cards_from(response)
    assert [b.name for b in first.bars] == ["favorite", "report", "share", "reply", "click"]  # no dwell_time
    assert first.bars[0].percent == 90.0 and first.bars[1].negative and not first.bars[0].negative
    assert first.boost == 2.0 and second.boost == 1.0
    assert (first.network, second.network, second.oon_factor) == ("in", "out", 0.75)


def test_tuning_sends_only_changed_numbers_and_refuses_non_numbers():
    tuning = views.parse_tuning({"oon_factor": "0", "diversity_decay": "0.5", "weight.reply": " 8 ", "result_size": ""},
                                ["AgeFilter"])
    assert tuning.overrides == {"oon_factor": 0.0, "weight.reply": 8.0}
    assert tuning.values["result_size"] == "35" and tuning.disabled == ["AgeFilter"] and tuning.touches_weights
    query = views.build_query(7, tuning)
    assert dict(query.params) == {"oon_factor": 0.0, "weight.reply": 8.0}
    assert list(query.disabled_components) == ["AgeFilter", "RecordServed"]
    assert views.parse_tuning({"oon_factor": "lots"}).errors == {"oon_factor": "oon_factor: 'lots' is not a number"}


def test_server_messages_are_matched_to_their_field():
    assert views.field_of_error("params.diversity_decay must be in [0, 1], got 2") == "diversity_decay"
    assert views.field_of_error("params.weight.favorite must be a finite number, got nan") == "weight.favorite"
    assert views.field_of_error("params: unknown parameter 'bogus'") == "bogus"
    assert views.field_of_error("disabled_components: unknown component 'X'") == "off"
    assert views.field_of_error("viewer_id is required") is None


def test_moves_against_the_untuned_feed():
    make = lambda ids: views.cards_from(home_mixer_pb2.ScoredPostsResponse(  # noqa: E731
        scored_posts=[post(i, 1.0 / (r + 1), 1.0 / (r + 1)) for r, i in enumerate(ids)]))
    before, after = make([1, 2, 3, 4]), make([3, 1, 2, 5])
    left = views.apply_moves(before, after)
    assert [c.move for c in after] == ["▲2", "▼1", "▼1", "new"]
    assert [(p.post_id, p.rank) for p in left] == [(4, 4)]


def test_timing_bars_scale_to_the_slowest_stage_and_keep_components_under_their_stage():
    T = home_mixer_pb2.StageTiming
    bars, total = views.timing_bars([T(stage="sources", component="ThunderSource", duration_ms=2.0),
                                     T(stage="sources", duration_ms=4.0), T(stage="scorers", duration_ms=8.0),
                                     T(stage="total", duration_ms=13.0)])
    assert total == 13.0
    assert [(b.name, b.percent) for b in bars] == [("sources", 50.0), ("scorers", 100.0)]
    assert [(c.name, c.percent) for c in bars[0].children] == [("ThunderSource", 25.0)]
