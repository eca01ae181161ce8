"""An imported data set served end to end: the real stack (broker, Thunder, Phoenix,
HomeMixer as processes), a small MovieLens-format data set imported through Kafka, and For
You feeds whose posts are the data set's movies."""
from __future__ import annotations

import asyncio
import time

import pytest

from foryou.feed import get_feed
from foryou.importers import movielens
from foryou.importers.common import publish
from foryou.stack import Stack, StackConfig

pytestmark = pytest.mark.slow
FEED_DEADLINE_S = 180


def write_dataset(root, users=12, movies=40):
    genres = ["Action", "Comedy", "Drama", "Horror"]
    (root / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        + "".join(f"{i}\tMovie {i}\t199{i % 10}\t{genres[i % 4]}\n" for i in range(1, movies + 1)))
    rows = [f"{u}\t{(u * 7 + k * 3) % movies + 1}\t{1 + (u + k) % 5}\t{880000000 + u * 1000 + k * 60}\n"
            for u in range(1, users + 1) for k in range(12)]
    (root / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(rows))
    return root


async def test_feeds_of_an_imported_dataset_are_made_of_its_posts(tmp_path, monkeypatch):
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path / "state"))
    data = movielens.load(write_dataset(tmp_path))
    movie_posts = set(data.item_posts.values())
    stack = Stack(StackConfig.free_ports(preset="tiny", ready_timeout_s=180), write_state=False)
    try:
        await stack.start()
        counts = await asyncio.to_thread(publish, data, stack.kafka_bootstrap)
        assert counts["posts"] == len(movie_posts)
        deadline = time.monotonic() + FEED_DEADLINE_S
        while True:  # until Phoenix has ingested the posts and HomeMixer gets candidates
            feed = await get_feed(stack.address("home-mixer"), 3)
            if len(feed.scored_posts) >= 5 or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        ids = [p.post_id for p in feed.scored_posts]
        assert len(ids) >= 5, f"feed of user 3 stayed short: {feed}"
        assert set(ids) <= movie_posts
        texts = {p.text for p in feed.scored_posts}
        assert all(t.startswith("Movie ") for t in texts)
    finally:
        await asyncio.to_thread(stack.stop)
