"""VisibilityFilter (post-selection): remove deleted posts and posts labelled unsafe. A
softer label (misinformation) keeps the post and says so in visibility_reason. A post whose
visibility is unknown (no core data) is removed too, whichever filters ran before."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from foryou_protos import common_pb2
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery

UNSAFE_LABELS = frozenset({common_pb2.SPAM, common_pb2.VIOLENCE, common_pb2.GORE, common_pb2.NSFW,
                           common_pb2.HATE, common_pb2.ABUSE})


def visible(c: PostCandidate) -> bool:
    return c.core_data_found is True and not c.deleted and not (set(c.labels) & UNSAFE_LABELS)


class VisibilityFilter(Filter[ScoredPostsQuery, PostCandidate]):
    fail_closed = True

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        result = split(candidates, visible)
        for c in result.kept:
            c.visibility_reason = ",".join(common_pb2.VisibilityLabel.Name(label).lower()
                                           for label in sorted(set(c.labels)))
        return result
