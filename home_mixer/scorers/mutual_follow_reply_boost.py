"""MutualFollowReplyBoostScorer: the reply weight of original posts by mutual follows (the
viewer follows the author, the author follows the viewer) is raised by
`mutual_follow_reply_boost` (15) before the weighted score's offset
(home_mixer/stages/mutual_follow.py). It recomputes the weighted score of those posts with
WeightedScorer's own functions, so the formula stays in one place. Who follows back comes
from Thunder's user context (`mutual_follow_user_ids`, UserFeatures.mutual_follows)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from home_mixer.candidates import PostBatch, id_array
from home_mixer.params import ACTION_NAMES
from home_mixer.query import ScoredPostsQuery
from home_mixer.scorers.weighted import combined_scores, offset_scores
from home_mixer.stages.mutual_follow import boosted_combined, mutual_follow_mask

REPLY = ACTION_NAMES.index("reply")


class MutualFollowReplyBoostScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("predictions", "scored_at_ms", "video_duration_ms", "author_id", "in_reply_to_post_id",
             "repost_of_post_id", "weighted_score")
    writes = ("weighted_score", "score")

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.params.mutual_follow_reply_boost != 0 and bool(query.features.mutual_follows)

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        features = query.features
        original = (candidates["in_reply_to_post_id"] == 0) & (candidates["repost_of_post_id"] == 0)
        boosted = mutual_follow_mask(candidates["author_id"], original & (candidates["scored_at_ms"] > 0),
                                     id_array(features.following), id_array(features.mutual_follows))
        weighted = candidates["weighted_score"].copy()
        if boosted.any():
            rows = np.flatnonzero(boosted)
            predictions = candidates["predictions"][rows]
            combined = combined_scores(predictions, candidates["video_duration_ms"][rows], query.params)
            combined = boosted_combined(combined, predictions[:, REPLY], np.ones(len(rows), bool),
                                        query.params.mutual_follow_reply_boost)
            weighted[rows] = offset_scores(combined, query.params)
        return {"weighted_score": weighted, "score": weighted}
