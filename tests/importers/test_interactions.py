"""`foryou import interactions`: the documented CSV schema, errors that name the row and the
column, nothing written on bad input unless asked to skip (and then said)."""
from __future__ import annotations

import argparse

import pytest

from foryou import snowflake
from foryou.event_file import read_events, write_events
from foryou.importers import interactions
from foryou.importers.cli import add_arguments, run as import_run
from foryou.importers.common import ImportDataError
from foryou_protos import common_pb2

NOW = 1_800_000_000_000
HEADER = "user_id,item_id,author_id,action,timestamp,text,item_created_at,dwell_ms\n"
GOOD = (HEADER
        + "7,sku-1,100,impression,1700000000,Red shoes,,\n"
        + "7,sku-1,100,click,1700000060,,,\n"
        + "7,sku-1,100,favorite,1700000060,,,4500\n"
        + "8,sku-2,101,repost,2023-11-14T22:20:00Z,Blue hat,1699990000,\n"
        + "8,sku-1,100,not_interested,1700000300000,,,\n")


def _args(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["interactions", *argv])


def test_rows_map_to_posts_engagements_and_impressions(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(GOOD)
    data = interactions.load(path, now_ms=NOW, keep_times=True)
    posts = {e.created.text: e.created for e in data.post_events}
    shoes, hat = posts["Red shoes"], posts["Blue hat"]
    assert data.item_posts == {"sku-1": shoes.post_id, "sku-2": hat.post_id}
    assert (shoes.author_id, hat.author_id) == (100, 101)
    assert hat.created_at_ms == 1699990000_000                      # item_created_at
    assert shoes.created_at_ms == 1700000000_000 - 1000             # 1 s before its first row
    assert snowflake.created_at_ms(shoes.post_id) == shoes.created_at_ms
    eng = sorted(data.engagements, key=lambda e: e.timestamp_ms)
    # the click and the favorite at the same time are one engagement; ISO and ms times parse
    assert [(e.user_id, e.post_id, list(e.actions), e.timestamp_ms, e.dwell_time_ms) for e in eng] == [
        (7, shoes.post_id, [common_pb2.FAVORITE, common_pb2.CLICK], 1700000060_000, 4500),
        (8, shoes.post_id, [common_pb2.NOT_INTERESTED], 1700000300_000, 0),
        (8, hat.post_id, [common_pb2.REPOST], 1700000400_000, 0)]
    assert [e.post_author_id for e in eng] == [100, 100, 101]
    # impressions: user 7's explicit one (not doubled by its engagement); user 8's two
    # engagements are impressions too, one session (less than 30 minutes apart)
    assert sorted((s.user_id, list(s.post_ids), s.served_at_ms) for s in data.served) == [
        (7, [shoes.post_id], 1700000000_000 - 1), (8, [shoes.post_id, hat.post_id], 1700000300_000 - 1)]
    profiles = {e.user_id for e in data.user_events}
    assert profiles == {7, 8, 100, 101}


def test_times_are_fitted_into_the_window_in_order(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(GOOD)
    data = interactions.load(path, days=1.0, now_ms=NOW)
    times = [e.timestamp_ms for e in sorted(data.engagements, key=lambda e: e.timestamp_ms)]
    created = [e.created.created_at_ms for e in data.post_events]
    assert NOW - 86_400_000 - 5 * 60_000 <= min(created + times) and max(times) == NOW - 5 * 60_000
    by_user_post = {(e.user_id, e.post_id): e.timestamp_ms for e in data.engagements}
    shoes = data.item_posts["sku-1"]
    assert by_user_post[(7, shoes)] < by_user_post[(8, shoes)]  # order kept


def test_malformed_file_names_row_and_column_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "7,sku-1,100,click,1700000000,,,\n"
                    + "7,sku-2,100,click,yesterday,,,\n"          # line 3: timestamp
                    + "x,sku-2,100,click,1700000000,,,\n"         # line 4: user_id
                    + "7,sku-3,100,clap,1700000000,,,\n"          # line 5: action
                    + "7,sku-1,999,click,1700000001,,,\n")        # line 6: a second author for sku-1
    with pytest.raises(ImportDataError) as err:
        interactions.load(path, now_ms=NOW)
    text = str(err.value)
    for fragment in ("line 3, column 'timestamp'", "line 4, column 'user_id'", "line 5, column 'action'",
                     "line 6, column 'author_id'", "4 bad row(s); nothing was imported"):
        assert fragment in text
    assert "line 2" not in text

    out = tmp_path / "out.events"
    write_events(out, [])  # an existing event file is left as it was
    before = out.read_bytes()
    assert import_run(_args(str(path), "--events-file", str(out), "--now-ms", str(NOW))) == 2
    assert out.read_bytes() == before
    assert "line 3, column 'timestamp'" in capsys.readouterr().err
    assert not list(tmp_path.glob(".out.events.*"))  # no temporary file left either


def test_skip_bad_rows_imports_the_rest_and_says_so(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "7,sku-1,100,click,1700000000,,,\n" + "7,sku-2,100,click,yesterday,,,\n")
    out = tmp_path / "out.events"
    ids = tmp_path / "ids.csv"
    assert import_run(_args(str(path), "--skip-bad-rows", "--events-file", str(out), "--now-ms", str(NOW),
                            "--id-map", str(ids))) == 0
    assert "skipped 1 bad row(s)" in capsys.readouterr().err
    engagements = [m for t, m in read_events(out) if t == "engagements"]
    assert len(engagements) == 1
    assert ids.read_text().splitlines() == ["item_id,post_id", f"sku-1,{engagements[0].post_id}"]


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,action,timestamp\n1,a,click,1700000000\n")
    with pytest.raises(ImportDataError, match="missing required column.*author_id"):
        interactions.load(path)


def test_parquet_is_read_like_csv(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"user_id": [7, 7], "item_id": ["a", "b"], "author_id": [100, 100],
                      "action": ["favorite", "reply"], "timestamp": ["1700000000", "bad"]})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(ImportDataError, match="row 2, column 'timestamp'"):
        interactions.load(tmp_path / "log.parquet")
