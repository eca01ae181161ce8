"""Plain query and candidate builders for the unit tests (no servers)."""
from __future__ import annotations

from foryou.snowflake import make_id, now_ms
from home_mixer.candidate import PostCandidate
from home_mixer.params import Params, parse_params
from home_mixer.query import ScoredPostsQuery, UserFeatures

VIEWER = 1000


def post_id(age_ms: int = 60_000, low: int = 0) -> int:
    return make_id(now_ms() - age_ms, low)


def cand(pid: int, author: int = 7, **fields) -> PostCandidate:
    return PostCandidate(post_id=pid, author_id=author, **fields)


def query(features: UserFeatures | None = None, params: dict | None = None, **fields) -> ScoredPostsQuery:
    return ScoredPostsQuery(viewer_id=VIEWER, request_id="req-test",
                            params=parse_params(params or {}) if params else Params(),
                            user_features=features, **fields)


def ids(candidates) -> list[int]:
    return [c.post_id for c in candidates]


# Posts of the integration world (hm_stack.build_world) never in the viewer's feed, whatever is
# down: own, blocked, muted, deleted (also deleted before created), labelled unsafe,
# muted keyword, subscriber-only without a subscription, too old.
NEVER = ("own1", "blocked1", "muted1", "b_deleted", "b_spam", "a_keyword", "sub_paywalled", "old",
         "oon_deleted_first")
