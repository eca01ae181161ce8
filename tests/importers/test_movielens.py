"""The MovieLens-100k importer on a tiny data set written in the recbole atomic format here
(never the real data): every mapped field is checked."""
from __future__ import annotations

from foryou import snowflake, topics
from foryou.event_file import read_events
from foryou.importers import movielens
from foryou.importers.cli import run as import_run
from foryou.importers.cli import add_arguments
from foryou_protos import common_pb2

NOW = 1_800_000_000_000
DAY_MS = 86_400_000


def write_fixture(root):
    (root / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t10\t5\t880000000\n"
        "1\t20\t3\t880000100\n"      # same session as the row above (100 s later)
        "2\t10\t2\t880500000\n"
        "2\t30\t4\t881000000\n"
        "1\t30\t1\t882000000\n")
    (root / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\n"
        "20\tHeat\t1995\tAction Crime Thriller\n"
        "30\tCasablanca\t1942\tDrama Romance War\n"
        "40\tNever Rated\t1990\tDrama\n")
    (root / "ml-100k.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "1\t24\tM\ttechnician\t85711\n"
        "2\t53\tF\tother\t94043\n")
    return root


def test_every_field_is_mapped(tmp_path):
    data = movielens.load(write_fixture(tmp_path), days=1.5, now_ms=NOW)
    profiles = {e.user_id: e.profile for e in data.user_events if e.WhichOneof("event") == "profile"}
    assert profiles[1].handle == "ml_user1" and profiles[1].display_name == "user 1 (24, M, technician)"
    assert profiles[2].display_name == "user 2 (53, F, other)"
    # author = one account per first genre: Animation, Action, Drama
    genre_accounts = {p.handle: uid for uid, p in profiles.items() if p.handle.startswith("genre_")}
    assert set(genre_accounts) == {"genre_animation", "genre_action", "genre_drama"}
    assert all(uid >= movielens.AUTHOR_BASE for uid in genre_accounts.values())

    posts = {e.created.text: e.created for e in data.post_events}
    assert set(posts) == {"Toy Story (1995) - Animation, Children's, Comedy", "Heat (1995) - Action, Crime, Thriller",
                          "Casablanca (1942) - Drama, Romance, War"}  # the never-rated movie is skipped
    toy, heat, casa = (posts[t] for t in sorted(posts, key=lambda t: ("Toy" not in t, "Heat" not in t)))
    assert toy.author_id == genre_accounts["genre_animation"] and casa.author_id == genre_accounts["genre_drama"]
    assert data.item_posts == {10: toy.post_id, 20: heat.post_id, 30: casa.post_id}
    for post in posts.values():  # snowflake ids carry the creation time, inside the window
        assert snowflake.created_at_ms(post.post_id) == post.created_at_ms
        assert NOW - 5 * 60_000 - 1.5 * DAY_MS - 1000 <= post.created_at_ms < NOW

    eng = sorted(data.engagements, key=lambda e: e.timestamp_ms)
    assert [(e.user_id, e.post_id) for e in eng] == [(1, toy.post_id), (1, heat.post_id), (2, toy.post_id),
                                                      (2, casa.post_id), (1, casa.post_id)]
    assert [list(e.actions) for e in eng] == [
        [common_pb2.FAVORITE, common_pb2.CLICK], [common_pb2.CLICK], [common_pb2.CLICK, common_pb2.NOT_INTERESTED],
        [common_pb2.FAVORITE, common_pb2.CLICK], [common_pb2.CLICK, common_pb2.NOT_INTERESTED]]
    assert all(e.post_author_id == {toy.post_id: toy, heat.post_id: heat, casa.post_id: casa}[e.post_id].author_id
               for e in eng)
    assert all(e.surface == common_pb2.HOME_FOR_YOU for e in eng)
    # times: linear, order kept, first rating at the window start, last just before now
    times = [e.timestamp_ms for e in eng]
    assert times == sorted(times) and len(set(times)) == 5
    assert times[0] == NOW - 5 * 60_000 - int(1.5 * DAY_MS) and times[-1] == NOW - 5 * 60_000
    span = 2_000_000  # source seconds between the first and last rating
    assert abs((times[1] - times[0]) - 100 / span * 1.5 * DAY_MS) <= 1
    # each post is created 1 s before its first rating
    assert toy.created_at_ms == times[0] - 1000 and casa.created_at_ms == times[3] - 1000

    served = sorted(data.served, key=lambda s: s.served_at_ms)
    assert [(s.user_id, list(s.post_ids)) for s in served] == [
        (1, [toy.post_id, heat.post_id]), (2, [toy.post_id]), (2, [casa.post_id]), (1, [casa.post_id])]
    assert served[0].served_at_ms == times[0] - 1
    assert sum(len(s.post_ids) for s in served) == len(eng)


def test_movie_authors_and_event_file_round_trip(tmp_path):
    write_fixture(tmp_path)
    data = movielens.load(tmp_path, now_ms=NOW, author="movie")
    assert {e.created.author_id for e in data.post_events} == {movielens.AUTHOR_BASE + i for i in (10, 20, 30)}

    import argparse
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "ml.events"
    args = parser.parse_args(["movielens-100k", "--data-dir", str(tmp_path), "--events-file", str(out),
                              "--now-ms", str(NOW)])
    assert import_run(args) == 0
    events = list(read_events(out))
    counts = {t: sum(1 for topic, _ in events if topic == t) for t in topics.TOPICS}
    assert counts == {topics.USERS: 5, topics.POSTS: 3, topics.SERVED: 4, topics.ENGAGEMENTS: 5}
    # time order: every post precedes its impressions and engagements
    first_seen = {}
    for i, (topic, m) in enumerate(events):
        if topic == topics.POSTS:
            first_seen[m.created.post_id] = i
        elif topic == topics.ENGAGEMENTS:
            assert first_seen[m.post_id] < i


def test_missing_package_says_how_to_install(monkeypatch):
    import importlib.util
    import pytest
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps recbole==1.2.1"):
        movielens.packaged_data_dir()
