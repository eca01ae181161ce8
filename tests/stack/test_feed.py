"""`foryou feed` output and failure modes (the live path is covered by tests/e2e)."""
from __future__ import annotations

import subprocess
import sys

from foryou.broker import free_port
from foryou.feed import format_feed, top_actions
from foryou_protos import home_mixer_pb2


def _response() -> home_mixer_pb2.ScoredPostsResponse:
    return home_mixer_pb2.ScoredPostsResponse(request_id="r1", scored_posts=[
        home_mixer_pb2.ScoredPost(post_id=11, author_id=3, score=0.91, in_network=True, author_screen_names=["ada_jazz3"],
                                  text="Loving the bebop and swing, trumpet #jazz",
                                  predictions={"favorite": 0.4, "reply": 0.05, "dwell": 0.6, "click": 0.2, "dwell_time": 9.0}),
        home_mixer_pb2.ScoredPost(post_id=12, author_id=4, score=0.5, in_network=False,
                                  text="x" * 200, predictions={"favorite": 0.1}),
    ])


def test_top_actions_ranks_probabilities_and_skips_dwell_time():
    post = _response().scored_posts[0]
    assert top_actions(post) == [("dwell", 0.6), ("favorite", 0.4), ("click", 0.2)]


def test_format_feed_shows_rank_author_network_score_actions_and_snippet():
    lines = format_feed(_response(), "user 1").splitlines()
    assert lines[0].startswith("For You feed of user 1 (2 posts")
    first, second = lines[2], lines[3]
    assert "1" in first and "@ada_jazz3" in first and " in " in first and "0.9100" in first
    assert "dwell 0.60, favorite 0.40, click 0.20" in first and "#jazz" in first
    assert "@4" in second and " out " in second and second.endswith("…") and "x" * 70 not in second


def test_feed_command_reports_an_unreachable_home_mixer():
    result = subprocess.run([sys.executable, "-m", "foryou.cli", "feed", "1", "--address", f"127.0.0.1:{free_port()}",
                             "--timeout", "2"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr
