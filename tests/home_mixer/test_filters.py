"""Every pre-scoring and post-selection filter, on plain candidates with hand-made inputs."""
from __future__ import annotations

from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2
from tests.home_mixer.hm_helpers import VIEWER, batch, cand, query, split

from home_mixer.bloom import ImpressionBloomFilter
from home_mixer.filters.age import AgeFilter
from home_mixer.filters.author_socialgraph import AuthorSocialgraphFilter
from home_mixer.filters.core_data_hydration import CoreDataHydrationFilter
from home_mixer.filters.dedup_conversation import DedupConversationFilter, conversation_keys
from home_mixer.filters.drop_duplicates import DropDuplicatesFilter
from home_mixer.filters.ineligible_subscription import IneligibleSubscriptionFilter
from home_mixer.filters.muted_keyword import KeywordMatcher, MutedKeywordFilter
from home_mixer.filters.previously_seen_posts import PreviouslySeenPostsFilter
from home_mixer.filters.previously_served_posts import PreviouslyServedPostsFilter
from home_mixer.filters.repost_deduplication import RepostDeduplicationFilter
from home_mixer.filters.self_post import SelfPostFilter
from home_mixer.filters.visibility import VisibilityFilter
from home_mixer.query import UserFeatures


def ids(rows: list[dict]) -> list[int]:
    return [row["post_id"] for row in rows]


async def test_drop_duplicates_keeps_the_first_of_each_id():
    a_thunder, b, a_phoenix = cand(1, source="ThunderSource"), cand(2), cand(1, source="PhoenixSource")
    result = await split(DropDuplicatesFilter(), query(), [a_thunder, b, a_phoenix])
    assert result.kept == ids([a_thunder, b])
    assert result.removed == ids([a_phoenix])


async def test_core_data_hydration_removes_posts_reported_missing_and_posts_not_hydrated():
    found, missing, not_hydrated = cand(1, core_data_found=True), cand(2, core_data_found=False), cand(3)
    result = await split(CoreDataHydrationFilter(), query(), [found, missing, not_hydrated])
    assert result.kept == [1]
    assert result.removed == [2, 3]      # unknown core data is unknown safety: removed
    assert CoreDataHydrationFilter.fail_closed


async def test_age_reads_the_snowflake_time():
    now = now_ms()
    fresh = cand(make_id(now - 1000))
    edge = cand(make_id(now - 2 * 24 * 3600 * 1000))       # exactly the max age: kept
    stale = cand(make_id(now - 2 * 24 * 3600 * 1000 - 1))   # 1 ms older: removed
    result = await split(AgeFilter(clock=lambda: now), query(), [fresh, edge, stale])
    assert result.kept == ids([fresh, edge])
    assert result.removed == ids([stale])
    short = await split(AgeFilter(clock=lambda: now), query(params={"max_age_ms": 500}), [fresh])
    assert short.removed == ids([fresh])


async def test_self_post_removes_the_viewers_own_posts():
    mine, theirs = cand(1, author=VIEWER), cand(2, author=5)
    result = await split(SelfPostFilter(), query(), [mine, theirs])
    assert result.kept == ids([theirs]) and result.removed == ids([mine])


async def test_repost_deduplication_walks_in_order():
    original = cand(10)
    repost_of_original = cand(11, repost_of_post_id=10)
    first_repost_of_20 = cand(12, repost_of_post_id=20)
    second_repost_of_20 = cand(13, repost_of_post_id=20)
    original_20_after_its_repost = cand(20)  # an original is never removed by this filter
    result = await split(RepostDeduplicationFilter(),
        query(), [original, repost_of_original, first_repost_of_20, second_repost_of_20, original_20_after_its_repost])
    assert result.kept == [10, 12, 20]
    assert result.removed == [11, 13]


async def test_ineligible_subscription():
    features = UserFeatures(subscriptions=frozenset({5}))
    public = cand(1, author=6)
    subscribed = cand(2, author=5, subscriber_only=True)
    flagged_by_hydrator = cand(3, author=8, subscriber_only=True, viewer_subscribes=True)
    not_subscribed = cand(4, author=6, subscriber_only=True)
    own = cand(5, author=VIEWER, subscriber_only=True)
    result = await split(IneligibleSubscriptionFilter(),
        query(features), [public, subscribed, flagged_by_hydrator, not_subscribed, own])
    assert result.kept == [1, 2, 3, 5]
    assert result.removed == [4]
    # Subscriptions unknown: every subscriber-only post of another author goes.
    unknown = await split(IneligibleSubscriptionFilter(),
        query(None), [public, subscribed, flagged_by_hydrator, not_subscribed, own])
    assert unknown.kept == [1, 5] and unknown.removed == [2, 3, 4]


async def test_previously_seen_uses_related_ids_and_bloom_filters():
    seen_post = cand(1)
    repost_of_seen = cand(2, repost_of_post_id=100)
    reply_to_seen = cand(3, in_reply_to_post_id=100)
    in_bloom = cand(4)
    unseen = cand(5)
    bloom = ImpressionBloomFilter.build([4], num_bits=4096, num_hashes=3)
    assert not bloom.may_contain(5)
    q = query(seen_ids=frozenset({1, 100}), bloom_filters=(bloom,))
    assert PreviouslySeenPostsFilter().enable(q)
    result = await split(PreviouslySeenPostsFilter(), q, [seen_post, repost_of_seen, reply_to_seen, in_bloom, unseen])
    assert result.kept == [5]
    assert result.removed == [1, 2, 3, 4]
    assert not PreviouslySeenPostsFilter().enable(query())


async def test_previously_served_v1_only_on_bottom_requests():
    # served_bottom_only = 1: the v1 behaviour, against the whole served record (1 was served
    # a day ago, long outside the 10-minute window of the newer default).
    v1 = {"served_bottom_only": 1}
    features = UserFeatures(served_ids=(1,), served_at_ms=(now_ms() - 24 * 3_600_000,))
    candidates = [cand(1), cand(2, repost_of_post_id=3), cand(4)]
    top = query(features, params=v1, served_ids=frozenset({3}))
    assert not PreviouslyServedPostsFilter().enable(top)
    bottom = query(features, params=v1, served_ids=frozenset({3}), is_bottom_request=True)
    assert PreviouslyServedPostsFilter().enable(bottom)
    result = await split(PreviouslyServedPostsFilter(), bottom, candidates)
    assert result.kept == [4]            # 1 served per Thunder, 2 reposts request-served 3
    assert result.removed == [1, 2]


def test_muted_keyword_matching_rules():
    matcher = KeywordMatcher(["Spoiler", "new york", "straße", "café", "#tag", "ＡＢＣ"])
    assert matcher.matches("no SPOILERS here") is False             # whole words only
    assert matcher.matches("big SPOILER ahead")
    assert matcher.matches("Spoiler!")
    assert matcher.matches("I love NEW   York.")                     # phrase, any spacing
    assert not matcher.matches("new jersey, york")                   # not consecutive
    assert matcher.matches("STRASSE gesperrt")                       # Unicode case folding
    assert matcher.matches("CAFÉ au lait")
    assert matcher.matches("cafe\u0301 au lait")                     # decomposed é (NFKC)
    assert not matcher.matches("cafeteria")
    assert matcher.matches("this is a #Tag")
    assert not matcher.matches("tagged")
    assert matcher.matches("abc song")                               # full-width keyword
    assert not KeywordMatcher(["", "   "]).matches("anything")
    # All at once: the same answers, each text on its own (folding does not cross texts).
    texts = ["no SPOILERS here", "big SPOILER ahead", "I love NEW   York.", "new jersey, york", "STRASSE gesperrt",
             "cafe\u0301 au lait", "cafeteria", "this is a #Tag", "tagged", "abc song", "", "spoiler\x00x", "new",
             "york spoiler"]
    assert matcher.matches_many(texts).tolist() == [matcher.matches(t) for t in texts]
    assert matcher.matches_many(texts).tolist() == [False, True, True, False, True, True, False, True, False,
                                                    True, False, True, False, True]


async def test_muted_keyword_filter():
    features = UserFeatures(muted_keywords=("Élection",))
    muted, clean = cand(1, text="l'ÉLECTION approche"), cand(2, text="élections")
    q = query(features)
    assert MutedKeywordFilter().enable(q) and not MutedKeywordFilter().enable(query(UserFeatures()))
    result = await split(MutedKeywordFilter(), q, [muted, clean])
    assert result.kept == ids([clean]) and result.removed == ids([muted])
    # Keywords unknown (no user features): enabled, and nothing can be shown as checked.
    assert MutedKeywordFilter().enable(query(None))
    unknown = await split(MutedKeywordFilter(), query(None), [muted, clean])
    assert unknown.kept == [] and unknown.removed == ids([muted, clean])


async def test_author_socialgraph_removes_blocked_and_muted_authors():
    features = UserFeatures(blocked=frozenset({5}), muted=frozenset({6}))
    blocked, muted, ok = cand(1, author=5), cand(2, author=6), cand(3, author=7)
    repost_of_blocked = cand(4, author=7, repost_of_post_id=99, repost_of_user_id=5)
    result = await split(AuthorSocialgraphFilter(), query(features), [blocked, muted, ok, repost_of_blocked])
    assert result.kept == ids([ok])
    assert result.removed == [1, 2, 4]
    unknown = await split(AuthorSocialgraphFilter(), query(None), [blocked, muted, ok, repost_of_blocked])
    assert unknown.kept == [] and unknown.removed == [1, 2, 3, 4]


async def test_visibility_filter_removes_deleted_unsafe_and_unknown():
    known = {"core_data_found": True}
    ok = cand(1, **known)
    deleted = cand(2, deleted=True, **known)
    spam = cand(3, labels=(common_pb2.SPAM,), **known)
    gore = cand(4, labels=(common_pb2.GORE, common_pb2.MISINFORMATION), **known)
    misinformation = cand(5, labels=(common_pb2.MISINFORMATION,), **known)
    unknown = cand(6)
    result = await split(VisibilityFilter(), query(), [ok, deleted, spam, gore, misinformation, unknown])
    assert result.kept == [1, 5]
    assert result.removed == [2, 3, 4, 6]


async def test_dedup_conversation_keeps_the_best_of_each_conversation():
    root = cand(100, score=0.2)
    reply = cand(105, score=0.9, in_reply_to_post_id=103, conversation_id=100)  # conversation = min ancestor = 100
    other_reply = cand(106, score=0.5, in_reply_to_post_id=100, conversation_id=100)
    standalone = cand(200, score=0.1, conversation_id=200)                      # a root: its own id
    assert conversation_keys(batch(reply, standalone, root)).tolist() == [100, 200, 100]
    result = await split(DedupConversationFilter(), query(), [root, reply, other_reply, standalone])
    assert result.kept == [105, 200]
    assert result.removed == [100, 106]

