"""VisibilityFilter (post-selection): remove deleted posts and posts labelled unsafe. A
softer label (misinformation) keeps the post and says so in visibility_reason."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from foryou_protos import common_pb2
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery

UNSAFE_LABELS = frozenset({common_pb2.SPAM, common_pb2.VIOLENCE, common_pb2.GORE, common_pb2.NSFW,
                           common_pb2.HATE, common_pb2.ABUSE})


class VisibilityFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        result = split(candidates, lambda c: not c.deleted and not (set(c.labels) & UNSAFE_LABELS))
        for c in result.kept:
            c.visibility_reason = ",".join(common_pb2.VisibilityLabel.Name(label).lower()
                                           for label in sorted(set(c.labels)))
        return result
