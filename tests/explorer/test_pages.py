"""Every explorer page and error page over HTTP (httpx against the ASGI app), with the real
services of the package's stack behind it."""
from __future__ import annotations

import asyncio
import html as html_lib
import re
import socket
import time
from collections import defaultdict

import grpc
import httpx
from markupsafe import escape
import pytest

from explorer import views
from explorer.app import create_app
from explorer.backends import Addresses
from foryou.broker import free_port
from foryou_protos import home_mixer_pb2_grpc

CARD = re.compile(r'<article class="card" data-post-id="(\d+)" data-network="(in|out)" data-rank="(\d+)">(.*?)</article>',
                  re.S)


def cards(page: str) -> list[tuple[int, str, str]]:
    return [(int(pid), net, body) for pid, net, _, body in CARD.findall(page)]


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://explorer", timeout=120)


@pytest.fixture(scope="module")
async def http(seeded):
    async with client(create_app(seeded.config())) as c:
        yield c


async def direct_feed(seeded, tuning=None, debug=False):
    async with grpc.aio.insecure_channel(seeded.stack.address("home-mixer")) as channel:
        return await home_mixer_pb2_grpc.ScoredPostsServiceStub(channel).GetScoredPosts(
            views.build_query(seeded.viewer, tuning, debug=debug), timeout=60)


async def test_home_lists_world_users_and_finds_a_user_by_handle(http, seeded):
    page = (await http.get("/")).text
    first = seeded.world.users[0]
    assert f'href="/feed/{first.user_id}"' in page and f"@{first.handle}" in page
    handle = seeded.world.user(seeded.viewer).handle
    for q in (handle, "@" + handle.upper(), str(seeded.viewer)):
        reply = await http.get("/", params={"q": q})
        assert reply.status_code == 303 and reply.headers["location"] == f"/feed/{seeded.viewer}", q
    reply = await http.get(f"/pipeline/{handle}", params={"oon_factor": "0.5"})
    assert reply.status_code == 303 and reply.headers["location"] == f"/pipeline/{seeded.viewer}?oon_factor=0.5"


async def test_feed_page_shows_the_feed_as_cards_in_order(http, seeded):
    reply = await http.get(f"/feed/{seeded.viewer}")
    assert reply.status_code == 200
    shown = cards(reply.text)
    expected = await direct_feed(seeded)
    assert [pid for pid, _, _ in shown] == [p.post_id for p in expected.scored_posts]
    assert len(shown) == 35
    assert {net for _, net, _ in shown} == {"in", "out"}
    for (pid, net, body), post in zip(shown, expected.scored_posts):
        assert net == ("in" if post.in_network else "out")
        assert str(escape(post.text)) in body
        assert f"@{post.author_screen_names[0]}" in body and post.source in body
        widths = [float(w) for w in re.findall(r'class="bar(?: neg)?" style="width: ([\d.]+)%"', body)]
        best = max(p for name, p in post.predictions.items() if name != "dwell_time")
        assert len(widths) == 5 and max(widths) == pytest.approx(100 * best, abs=0.1)
        assert "weighted score" in body and "diversity" in body
    why = [re.search(r'<p class="why">(.+?)</p>', body).group(1) for _, _, body in shown]
    assert sum(w.startswith("above the next post: ") for w in why) > 20 and why[-1] == "last post of the feed"
    # the world's hidden topic of each post is shown too
    # (of the world's own posts: the stack may hold others, e.g. reposts made at seeding)
    pid, _, body = next(card for card in shown if card[0] in seeded.world.post_topic)
    topic = seeded.world.topic_names[seeded.world.post_topic[pid]]
    assert f'<span class="topic">{topic}</span>' in body


async def test_tuning_the_out_of_network_factor_to_zero_moves_every_out_of_network_post_out(http, seeded):
    before = cards((await http.get(f"/feed/{seeded.viewer}")).text)
    out_before = {pid for pid, net, _ in before if net == "out"}
    assert out_before
    reply = await http.get(f"/tune/{seeded.viewer}", params={"oon_factor": "0"})
    assert reply.status_code == 200
    after = cards(reply.text)
    assert len(after) == 35 and all(net == "in" for _, net, _ in after)
    left = {int(pid) for pid in re.findall(r'<li data-post-id="(\d+)" data-network="out">', reply.text)}
    assert left == out_before
    assert re.search(r'class="move move-up">▲\d+<', reply.text)
    # the request can be reproduced: the grpcurl command carries the override and the address
    command = html_lib.unescape(re.search(r'<pre class="repro" id="grpcurl">(.*?)</pre>', reply.text, re.S).group(1))
    assert '"oon_factor": 0.0' in command and seeded.stack.address("home-mixer") in command
    assert "foryou.ScoredPostsService/GetScoredPosts" in command and '"RecordServed"' in command


async def test_tuning_switches_components_off_and_changes_weights(http, seeded):
    reply = await http.get(f"/tune/{seeded.viewer}", params=[("off", "PhoenixSource")])
    assert reply.status_code == 200
    shown = cards(reply.text)
    assert shown and all(net == "in" for _, net, _ in shown)
    assert re.search(r'data-component="PhoenixSource"\s*>', reply.text)  # its checkbox is unticked
    assert re.search(r'data-component="ThunderSource" checked>', reply.text)
    # a weight: every card's explanation and order follow the new weights
    tuned = await direct_feed(seeded, views.parse_tuning({"weight.report": "0"}))
    reply = await http.get(f"/tune/{seeded.viewer}", params={"weight.report": "0"})
    assert [pid for pid, _, _ in cards(reply.text)] == [p.post_id for p in tuned.scored_posts]
    assert '<details open>' in reply.text  # the weights section opens when a weight is overridden


@pytest.mark.parametrize("field, value, message", [
    ("diversity_decay", "2", "params.diversity_decay must be in [0, 1], got 2"),
    ("result_size", "3.5", "params.result_size must be an integer, got 3.5"),
    ("weight.favorite", "abc", "weight.favorite: 'abc' is not a number"),
])
async def test_a_bad_parameter_is_shown_next_to_its_field(http, seeded, field, value, message):
    reply = await http.get(f"/tune/{seeded.viewer}", params={field: value})
    assert reply.status_code == 400
    shown = re.search(rf'<input type="text" inputmode="decimal" name="{re.escape(field)}".*?'
                      rf'<span class="field-error" data-field="{re.escape(field)}">(.*?)</span>', reply.text, re.S)
    assert shown, reply.text
    assert html_lib.unescape(shown.group(1)) == message
    assert len(cards(reply.text)) == 35  # the untuned feed is still shown


async def test_a_bad_parameter_on_other_pages_shows_the_servers_message(http, seeded):
    reply = await http.get(f"/pipeline/{seeded.viewer}", params={"oon_factor": "-1"})
    assert reply.status_code == 400 and "<h1>Bad request</h1>" in reply.text
    assert "params.oon_factor must be in [0, inf], got -1" in reply.text


async def test_pipeline_page_groups_removed_candidates_by_filter_with_their_text(http, seeded):
    reply = await http.get(f"/pipeline/{seeded.viewer}")
    assert reply.status_code == 200
    expected = await direct_feed(seeded, debug=True)
    by_filter = defaultdict(set)
    for r in expected.debug.removed:
        by_filter[r.removed_by].add(r.post_id)
    assert by_filter
    groups = re.findall(r'<section class="filter-group" data-filter="(\w+)">(.*?)</section>', reply.text, re.S)
    assert {name: {int(p) for p in re.findall(r'data-post-id="(\d+)"', body)} for name, body in groups} == by_filter
    some_id = next(iter(by_filter[groups[0][0]]))
    assert str(escape(seeded.world.post(some_id).text)) in groups[0][1]
    for stage in ("sources", "filters", "scorers"):
        assert re.search(rf'class="timing stage" data-stage="{stage}"><span class="t-name">{stage}</span>\s*'
                         rf'<span class="bar-track"><span class="bar" style="width: [\d.]+%">', reply.text)
    assert 'data-component="PhoenixScorer"' in reply.text
    assert 'id="not-degraded"' in reply.text


async def test_user_page_shows_follows_engagements_and_hidden_tastes(http, seeded):
    reply = await http.get(f"/user/{seeded.viewer}")
    assert reply.status_code == 200
    world = seeded.world
    follows = re.search(r'<ul class="people" id="follows">(.*?)</ul>', reply.text, re.S).group(1)
    assert {int(u) for u in re.findall(r'href="/feed/(\d+)"', follows)} == world.follows[seeded.viewer]
    assert f"@{world.user(next(iter(world.follows[seeded.viewer]))).handle}" in follows
    topics = re.findall(r'<tr data-topic="(\w+)">', reply.text)
    taste = world.user(seeded.viewer).taste
    assert topics == [world.topic_names[i] for i in taste.argsort()[::-1]]  # most loved first
    engaged = [e for e in world.engagements if e.user_id == seeded.viewer]
    rows = re.search(r'<table class="engagements" id="engagements">(.*?)</table>', reply.text, re.S).group(1)
    assert rows.count("<tr>") - 1 == min(len(engaged), 30) > 0
    newest = max(engaged, key=lambda e: e.timestamp_ms)
    assert str(escape(world.post(newest.post_id).text)) in rows


async def test_model_page_shows_model_info_and_the_last_evaluation(seeded, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    (tmp_path / "eval.md").write_text("ranker-30: | method | favorite AUC |\n| model | 0.812 |\n")
    pyplot.figure(figsize=(1, 1)).savefig(tmp_path / "eval.png")
    async with client(create_app(seeded.config(eval_dir=tmp_path))) as http:
        page = (await http.get("/model")).text
        assert "(initial weights)" in page or 'id="checkpoint"' in page
        assert re.search(r"<th>corpus size</th><td>(\d+)</td>", page).group(1) != "0"
        assert "favorite" in page and "| model | 0.812 |" in page
        assert '<img id="eval-png" src="/model/eval.png"' in page
        png = await http.get("/model/eval.png")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
    async with client(create_app(seeded.config())) as http:
        page = (await http.get("/model")).text
        assert 'id="no-eval"' in page and "--eval-dir" in page
        assert (await http.get("/model/eval.png")).status_code == 404


async def test_unknown_users_get_a_clear_404(http):
    for path in ("/feed/987654321", "/user/987654321", "/pipeline/nobody_here", "/?q=nobody_here"):
        reply = await http.get(path)
        assert reply.status_code == 404, path
        assert "<h1>Unknown user</h1>" in reply.text


async def test_a_service_down_is_named_on_its_error_page(seeded):
    dead = f"127.0.0.1:{free_port()}"
    up = seeded.addresses
    cases = [("thunder", Addresses(up.home_mixer, dead, up.phoenix), f"/user/{seeded.viewer}"),
             ("phoenix", Addresses(up.home_mixer, up.thunder, dead), "/model"),
             ("home-mixer", Addresses(dead, up.thunder, up.phoenix), f"/feed/{seeded.viewer}")]
    for service, addresses, path in cases:
        async with client(create_app(seeded.config(addresses=addresses, timeout_s=5, feed_timeout_s=5))) as http:
            reply = await http.get(path)
        assert reply.status_code == 503, (service, reply.text)
        assert f'data-service="{service}"' in reply.text and f"<h1>{service} is down</h1>" in reply.text
        assert dead in reply.text and "UNAVAILABLE" in reply.text


async def test_a_hanging_service_does_not_block_the_event_loop(seeded):
    """Phoenix's address accepts connections and never answers: the Model page waits for its
    deadline while other requests are served meanwhile (the gRPC calls are asynchronous)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    hanging = f"127.0.0.1:{silent.getsockname()[1]}"
    up = seeded.addresses
    app = create_app(seeded.config(addresses=Addresses(up.home_mixer, up.thunder, hanging), timeout_s=4))
    try:
        async with client(app) as http:
            started = time.monotonic()
            model = asyncio.ensure_future(http.get("/model"))
            await asyncio.sleep(0.3)
            for _ in range(3):
                assert (await http.get("/healthz")).text == "ok"
            assert not model.done()
            user = await http.get(f"/user/{seeded.viewer}")  # Thunder and HomeMixer calls meanwhile
            assert user.status_code == 200 and not model.done()
            reply = await model
            assert reply.status_code == 503 and "DEADLINE_EXCEEDED" in reply.text
            assert time.monotonic() - started >= 3.5
    finally:
        silent.close()
