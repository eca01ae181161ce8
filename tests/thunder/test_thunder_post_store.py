"""PostStore: admission, deletes, labels, expiry and the in-network query semantics."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from foryou_protos import common_pb2
from thunder.id_tables import IdSet, RowIndex
from thunder.post_store import InNetworkQuery, PostStore, decode_wire
from thunder.reference import reference_in_network
from thunder.settings import HOUR_MS, QueryLimits, StoreLimits
from thunder_helpers import created, deleted, labelled, post, reply, repost

NOW = 1_790_000_000_000
VIEWER = 1


def in_network_query(store: PostStore, following, id_sets: bool = False, **kw) -> InNetworkQuery:
    """`id_sets`: following and exclusions as the service passes them (IdSet)."""
    following = IdSet(list(following)) if id_sets else dict.fromkeys(following)
    if id_sets and kw.get("exclude"):
        kw["exclude"] = IdSet(list(kw["exclude"]))
    return InNetworkQuery(viewer_id=kw.pop("viewer", VIEWER), following=following, following_set=following,
                          min_created_at_ms=kw.pop("min_created", NOW - store.limits.retention_ms), **kw)


def query(store: PostStore, following, id_sets: bool = False, **kw) -> list[int]:
    return [rec.post_id for rec in store.in_network(in_network_query(store, following, id_sets, **kw))]


def add(store: PostStore, *posts: common_pb2.Post, now: int = NOW) -> None:
    for p in posts:
        store.apply(created(p), now)


def test_in_network_returns_followed_authors_posts_newest_first():
    store = PostStore()
    a = [post(10, NOW - 5000), post(10, NOW - 1000)]
    b = [post(20, NOW - 3000), post(20, NOW - 2000)]
    c = [post(30, NOW - 500)]  # not followed
    add(store, a[1], b[0], a[0], c[0], b[1])  # arrival order is irrelevant
    assert query(store, [10, 20]) == [a[1].post_id, b[1].post_id, b[0].post_id, a[0].post_id]


def test_duplicate_create_keeps_one_copy():
    store = PostStore()
    p = post(10, NOW - 1000)
    add(store, p, p, p)
    assert query(store, [10]) == [p.post_id]
    assert store.sizes()["posts"] == 1 and store.duplicates == 2


def test_too_old_and_future_posts_are_not_admitted():
    store = PostStore(StoreLimits(retention_ms=HOUR_MS, future_skew_ms=1000))
    old = post(10, NOW - HOUR_MS - 1)
    future = post(10, NOW + 5000)
    fine = post(10, NOW + 500)  # within the clock-skew allowance
    add(store, old, future, fine)
    assert query(store, [10]) == [fine.post_id]
    assert store.get(old.post_id, NOW) is None and store.get(future.post_id, NOW) is None
    assert (store.refused_too_old, store.refused_future) == (1, 1)


def test_delete_hides_post_but_lookup_reports_it_deleted():
    store = PostStore()
    keep, gone = post(10, NOW - 2000), post(10, NOW - 1000)
    add(store, keep, gone)
    store.apply(deleted(gone, NOW), NOW)
    assert query(store, [10]) == [keep.post_id]
    assert store.get(gone.post_id, NOW).deleted is True
    assert store.get(keep.post_id, NOW).deleted is False


def test_delete_before_create_wins():
    store = PostStore()
    p = post(10, NOW - 1000)
    store.apply(deleted(p, NOW), NOW)
    add(store, p)
    assert query(store, [10]) == []
    assert store.get(p.post_id, NOW).deleted is True


def test_labels_replace_and_label_before_create_wins():
    store = PostStore()
    p = post(10, NOW - 1000)
    store.apply(labelled(p, [common_pb2.SPAM], NOW - 10), NOW)
    add(store, p)
    assert list(store.get(p.post_id, NOW).labels) == [common_pb2.SPAM]
    store.apply(labelled(p, [common_pb2.NSFW, common_pb2.GORE], NOW - 5), NOW)
    store.apply(labelled(p, [common_pb2.HATE], NOW - 8), NOW)  # older: ignored
    assert list(store.get(p.post_id, NOW).labels) == [common_pb2.NSFW, common_pb2.GORE]


def test_create_event_cannot_set_deleted_or_labels_itself():
    store = PostStore()
    p = post(10, NOW - 1000, deleted=True, labels=[common_pb2.SPAM])
    add(store, p)
    got = store.get(p.post_id, NOW)
    assert got.deleted is False and list(got.labels) == []
    assert query(store, [10]) == [p.post_id]


def test_trim_drops_expired_posts_and_tombstones():
    store = PostStore(StoreLimits(retention_ms=10_000))
    old, new = post(10, NOW - 8000), post(10, NOW - 1000)
    old_deleted = post(20, NOW - 9000)
    add(store, old, new, old_deleted)
    store.apply(deleted(old_deleted, NOW - 8500), NOW)
    store.apply(labelled(old, [common_pb2.SPAM], NOW - 7000), NOW)
    assert store.trim(NOW) == 0
    later = NOW + 5000  # `old` and `old_deleted` are now beyond the 10 s window
    assert store.trim(later) == 2
    assert store.get(old.post_id, later) is None and store.get(old_deleted.post_id, later) is None
    assert query(store, [10, 20], min_created=0) == [new.post_id]
    sizes = store.sizes()
    assert (sizes["posts"], sizes["deleted_posts"], sizes["labelled_posts"]) == (1, 0, 0)
    assert 20 not in store.originals  # emptied author lists are dropped


def test_expired_post_is_missing_from_lookup_before_trim():
    store = PostStore(StoreLimits(retention_ms=10_000))
    p = post(10, NOW - 8000)
    add(store, p)
    assert store.get(p.post_id, NOW) is not None
    assert store.get(p.post_id, NOW + 3000) is None


def test_per_author_caps_and_max_results():
    limits = QueryLimits(max_originals_per_author=3, max_secondary_per_author=2)
    store = PostStore(query=limits)
    originals = [post(10, NOW - 10_000 + i) for i in range(6)]
    root = post(99, NOW - 20_000)
    replies = [reply(10, NOW - 5000 + i, root) for i in range(4)]
    add(store, root, *originals, *replies)
    got = query(store, [10])
    assert got == [r.post_id for r in replies[::-1][:2]] + [p.post_id for p in originals[::-1][:3]]
    assert query(store, [10], max_results=4) == got[:4]


def test_exclusions_and_max_age():
    store = PostStore()
    ps = [post(10, NOW - 10_000 * (i + 1)) for i in range(5)]  # newest first
    add(store, *ps)
    assert query(store, [10], exclude=frozenset({ps[0].post_id, ps[2].post_id})) == [
        ps[1].post_id, ps[3].post_id, ps[4].post_id]
    assert query(store, [10], min_created=NOW - 25_000) == [ps[0].post_id, ps[1].post_id]


def test_exclusions_backfill_up_to_the_per_author_cap():
    store = PostStore(query=QueryLimits(max_originals_per_author=2))
    ps = [post(10, NOW - 1000 * (i + 1)) for i in range(4)]
    add(store, *ps)
    assert query(store, [10], exclude=frozenset({ps[0].post_id})) == [ps[1].post_id, ps[2].post_id]


def test_reply_and_repost_eligibility():
    """Replies to originals are in; a reply to a reply counts only if that reply answers the
    conversation root and is addressed to a followed account; reposts of the viewer's own posts
    and replies to unknown or deleted posts are out."""
    store = PostStore()
    root = post(50, NOW - 9000)                                  # original by 50
    r1 = reply(2, NOW - 8000, root)                              # 2 -> root: eligible
    r2 = reply(3, NOW - 7000, r1)                                # 3 -> 2 (followed), r1 answers root
    r3 = reply(4, NOW - 6000, r1, in_reply_to_user_id=99)         # addressed to 99 (not followed)
    r4 = reply(3, NOW - 5000, r2)                                # r2 does not answer the root
    own = post(VIEWER, NOW - 9500)
    rp_own = repost(2, NOW - 4000, own)                          # repost of the viewer's post: out
    rp_other = repost(2, NOW - 3000, root)                       # repost of someone else's: in
    orphan = reply(4, NOW - 2000, post(77, NOW - 9900))          # parent never arrived: out
    gone = post(50, NOW - 8500)
    r_gone = reply(5, NOW - 1000, gone)                          # parent deleted: out
    add(store, root, r1, r2, r3, r4, own, rp_own, rp_other, orphan, gone, r_gone)
    store.apply(deleted(gone, NOW), NOW)
    got = set(query(store, [2, 3, 4, 5]))
    assert got == {r1.post_id, r2.post_id, rp_other.post_id}


def test_reply_eligibility_uses_the_request_following_set():
    store = PostStore()
    root = post(50, NOW - 9000)
    r1 = reply(2, NOW - 8000, root)
    r2 = reply(3, NOW - 7000, r1)  # addressed to 2
    add(store, root, r1, r2)
    assert r2.post_id in query(store, [2, 3])
    assert r2.post_id not in query(store, [3])  # viewer does not follow 2


def test_video_request_returns_video_posts_and_reposts_of_videos_only():
    store = PostStore()
    video = post(10, NOW - 9000, video_duration_ms=30_000)
    plain = post(10, NOW - 8000)
    video_reply = reply(10, NOW - 7000, plain, video_duration_ms=5_000)
    rp_video = repost(20, NOW - 6000, video)
    rp_plain = repost(20, NOW - 5000, plain)
    own_video = post(VIEWER, NOW - 9500, video_duration_ms=1000)
    rp_own_video = repost(20, NOW - 4000, own_video)
    add(store, video, plain, video_reply, rp_video, rp_plain, own_video, rp_own_video)
    assert query(store, [10, 20], video_only=True) == [rp_video.post_id, video.post_id]


def test_out_of_order_and_duplicated_events_converge_to_the_same_state():
    events = []
    posts = []
    for author in (10, 20, 30):
        for i in range(5):
            # Equal creation times across authors exercise the tie order.
            posts.append(post(author, NOW - 10_000 + i * 100))
    root = posts[0]
    posts.append(reply(20, NOW - 500, root))
    posts.append(repost(30, NOW - 400, posts[1]))
    events += [created(p) for p in posts]
    events += [deleted(posts[3], NOW - 50), deleted(posts[7], NOW - 40)]
    events += [labelled(posts[4], [common_pb2.SPAM], NOW - 30), labelled(posts[4], [common_pb2.NSFW], NOW - 20),
               labelled(posts[9], [common_pb2.HATE], NOW - 10)]

    def state(sequence):
        store = PostStore()
        for event in sequence:
            store.apply(event, NOW)
        return store.snapshot(), query(store, [10, 20, 30])

    in_order = state(events)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = events + rng.sample(events, 8)  # plus redeliveries
        rng.shuffle(shuffled)
        assert state(shuffled) == in_order


def test_query_reads_only_followed_authors_lists():
    """The query reads only the followed authors (their head rows, and the timelines of those
    whose rows are stale): no scan of the store."""
    store = PostStore()
    add(store, *[post(a, NOW - 1000 - a) for a in range(100, 200)])

    class Spy(dict):
        looked_up: list = []

        def get(self, key, default=None):
            Spy.looked_up.append(key)
            return super().get(key, default)

        def scanned(self, *args):
            raise AssertionError("the query iterated over a store-wide map")

        __iter__ = keys = values = items = scanned

    store.originals = Spy(store.originals)
    store.secondary = Spy(store.secondary)
    store.videos = Spy(store.videos)
    store.posts = Spy(store.posts)
    got = query(store, [150, 120, 999])
    assert len(got) == 2
    assert set(Spy.looked_up) <= {120, 150, 999} | set(got)   # timelines of followed authors, answered posts


@pytest.mark.parametrize("cap", [1, 4])
def test_caps_hold_on_the_fast_path_with_many_posts(cap):
    store = PostStore(query=QueryLimits(max_originals_per_author=cap))
    add(store, *[post(a, NOW - 100_000 + i) for a, i in itertools.product(range(5), range(20))])
    assert len(query(store, range(5))) == 5 * cap


def test_reply_turns_ineligible_once_its_seen_parent_is_deleted_or_expired():
    store = PostStore(StoreLimits(retention_ms=10_000))
    root_a, root_b = post(50, NOW - 9000), post(51, NOW - 9500)
    ra, rb = reply(2, NOW - 1000, root_a), reply(2, NOW - 900, root_b)
    add(store, root_a, root_b, ra, rb)
    assert set(query(store, [2])) == {ra.post_id, rb.post_id}  # parents now cached on the replies
    store.apply(deleted(root_a, NOW), NOW)
    assert query(store, [2]) == [rb.post_id]
    store.trim(NOW + 800)  # root_b (created NOW - 9500) is now older than the 10 s window
    assert query(store, [2], min_created=0) == []


def test_answers_follow_changes_made_after_an_earlier_query():
    """Each query sees the store as it is: a parent arriving after its reply, a post deleted,
    relabelled or added after a query already read that author."""
    store = PostStore()
    parent = post(50, NOW - 9000)
    early = reply(2, NOW - 8000, parent)          # arrives before its parent
    add(store, early)
    assert query(store, [2]) == []
    add(store, parent)
    assert query(store, [2]) == [early.post_id]
    newer = post(2, NOW - 500)
    add(store, newer)
    assert query(store, [2]) == [newer.post_id, early.post_id]
    store.apply(labelled(newer, [3], NOW), NOW)
    q = InNetworkQuery(viewer_id=VIEWER, following=[2], following_set={2}, min_created_at_ms=0)
    assert [list(decode_wire(w).labels) for w in store.in_network_wires(q)] == [[3], []]
    store.apply(deleted(parent, NOW), NOW)
    assert query(store, [2]) == [newer.post_id]


def test_wires_answer_is_the_same_posts_encoded():
    store = PostStore()
    ps = [post(10 + i % 3, NOW - 1000 * i) for i in range(1, 30)]
    add(store, *ps)
    store.apply(deleted(ps[4], NOW), NOW)
    q = InNetworkQuery(viewer_id=VIEWER, following=[10, 11, 12], following_set={10, 11, 12},
                       exclude=frozenset({ps[0].post_id}), max_results=12)
    recs = store.in_network(q)
    assert len(recs) == 12
    assert store.in_network_wires(q) == [rec.wire for rec in recs]
    assert [decode_wire(w).post_id for w in store.in_network_wires(q)] == [rec.post_id for rec in recs]


def test_equal_creation_times_keep_a_total_order():
    store = PostStore()
    same = [post(10, NOW - 1000) for _ in range(5)]
    for p in reversed(same):
        add(store, p)
    assert [r.post_id for r in store.originals[10].recs] == sorted(p.post_id for p in same)
    store.apply(deleted(same[2], NOW), NOW)
    assert list(store.originals[10].ids) == sorted(p.post_id for p in same if p is not same[2])
    assert list(store.originals[10].times) == [NOW - 1000] * 4


@pytest.mark.parametrize("arrival, spare, id_sets", [
    ("in_order", 6, False), ("shuffled", 6, False), ("bulk_shuffled", 6, False), ("shuffled", 0, False),
    ("in_order", 1, False), ("in_order", 6, True), ("shuffled", 0, True)])
def test_in_network_matches_a_brute_force_reading_of_the_spec(arrival, spare, id_sets):
    """`spare`: head cells beyond the caps; few means many authors answered by a walk."""
    limits = QueryLimits(max_originals_per_author=4, max_secondary_per_author=2, max_scan_per_author=10_000,
                         head_spare_per_author=spare)
    store = PostStore(StoreLimits(retention_ms=3_000_000), query=limits)
    rng = random.Random(42)
    authors = list(range(100, 130))
    times = rng.sample(range(NOW - 3_000_000, NOW - 1000), 1500)  # distinct: a total order
    made = []
    for created_ms in sorted(times):
        author = rng.choice(authors)
        roll = rng.random()
        if made and roll < 0.3:
            p = reply(author, created_ms, rng.choice(made[-200:]))
        elif made and roll < 0.45:
            p = repost(author, created_ms, rng.choice(made))
        else:
            p = post(author, created_ms)
        made.append(p)

    def check(now, rounds):
        for _ in range(rounds):
            following = rng.sample(authors, rng.randrange(1, len(authors)))
            viewer = rng.choice(authors + [VIEWER])
            exclude = frozenset(p.post_id for p in rng.sample(made, rng.randrange(0, 200)))
            min_created = rng.choice([now - 3_000_000, now - 1_500_000])
            max_results = rng.choice([5, 20, 60, 1200])
            q = in_network_query(store, following, id_sets, viewer=viewer, exclude=exclude,
                                 min_created=min_created, max_results=max_results)
            assert [rec.post_id for rec in store.in_network(q)] == reference_in_network(store, q)

    arriving = list(made)
    if arrival != "in_order":
        rng.shuffle(arriving)  # replies may arrive before the posts they answer
    if arrival == "bulk_shuffled":
        store.begin_bulk()
    for i, p in enumerate(arriving):
        add(store, p)
        if arrival == "shuffled" and i % 300 == 299:
            check(NOW, 5)  # heads written part-way must follow what arrives later
    for p in rng.sample(made, 60):
        store.apply(deleted(p, NOW), NOW)
    if arrival == "bulk_shuffled":
        store.end_bulk()

    check(NOW, 150)
    store.trim(NOW + 1_000_000)  # a third of the posts expire, parents of later replies among them
    check(NOW + 1_000_000, 50)
    late = [reply(a, NOW + 5000 + i, rng.choice(made[-300:])) for i, a in enumerate(authors)]
    add(store, *late, now=NOW + 1_000_000)
    check(NOW + 1_000_000, 50)


def test_bulk_load_in_any_order_ends_in_the_same_state():
    ps = [post(10 + i % 3, NOW - 100_000 + (i * 7919) % 50_000) for i in range(60)]
    ps.append(repost(10, NOW - 10, post(99, NOW - 20, video_duration_ms=5)))
    ordered = PostStore()
    add(ordered, *sorted(ps, key=lambda p: (p.created_at_ms, p.post_id)))
    bulk = PostStore()
    bulk.begin_bulk()
    add(bulk, *ps)
    bulk.apply(deleted(ps[5], NOW), NOW)     # deletes and trims work on unordered timelines too
    ordered.apply(deleted(ps[5], NOW), NOW)
    assert bulk.end_bulk() > 0
    assert bulk.snapshot() == ordered.snapshot()
    for author in (10, 11, 12):
        assert list(bulk.originals[author].times) == sorted(bulk.originals[author].times)


def test_row_index_finds_every_author_across_growth():
    index = RowIndex(bits=2)
    rng = random.Random(7)
    keys = [0, 2**64 - 1] + rng.sample(range(1, 2**63), 500)
    for row, key in enumerate(keys):
        index.add(key, row)
    unknown = [k + 1 for k in keys[2:50] if k + 1 not in set(keys)]
    got = index.lookup(np.array(keys + unknown, dtype=np.uint64)).tolist()
    assert got == list(range(len(keys))) + [-1] * len(unknown)


def test_id_set_is_a_set_of_the_ids():
    ids = IdSet([5, 2**64 - 1, 5, 0, 7])
    assert list(ids) == [0, 5, 7, 2**64 - 1] and len(ids) == 4
    assert 7 in ids and 6 not in ids and 2**64 - 1 in ids
    assert ids.contains(np.array([0, 1, 7, 2**64 - 1, 8], np.uint64)).tolist() == [True, False, True, True, False]
    assert not IdSet([]).contains(np.array([0], np.uint64)).any() and 0 not in IdSet([])
